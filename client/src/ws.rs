//! A WebSocket connection to the hub that speaks protocol v1 in types: it
//! sends `ClientMsg`s, reads `ServerMsg`s, and has one helper per op plus
//! the waits a test needs ("the update, then the ack"). It is an
//! expectation client: a wait that gets something else panics with what it
//! got, which is what a test wants and why the load generator keeps its own
//! lean socket code for the measured path.

use std::time::Duration;

use audotics_protocol::model::{Snapshot, TrackBody};
use audotics_protocol::{Change, ClientMsg, ErrorCode, ServerMsg};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::msg;

/// How long a wait for a frame or a close may take before it panics.
pub const WAIT: Duration = Duration::from_secs(15);

/// How long [`Ws::try_recv`] listens before it concludes nothing is coming.
pub const QUIET: Duration = Duration::from_millis(300);

/// How a connection ended, as the client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// A close frame with this code (1005 when it carried none).
    Code(u16),
    /// The socket ended without a close frame.
    Dropped,
}

/// One connection to `/v1/ws`. `S` is the transport; only tests that need
/// an odd socket (a tiny receive buffer) name it.
pub struct Ws<S = MaybeTlsStream<TcpStream>> {
    ws: WebSocketStream<S>,
}

impl Ws {
    /// Connect to `url` (`ws://host:port/v1/ws`); panics if the hub refuses.
    pub async fn connect(url: &str) -> Ws {
        Ws::try_connect(url)
            .await
            .unwrap_or_else(|e| panic!("ws connect to {url}: {e}"))
    }

    /// Connect to `url`, returning the refusal (e.g. an HTTP 503) instead of
    /// panicking.
    pub async fn try_connect(url: &str) -> Result<Ws, tungstenite::Error> {
        let (ws, _) = tokio_tungstenite::connect_async(url).await?;
        Ok(Ws { ws })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Ws<S> {
    /// Wrap a WebSocket opened some other way.
    pub fn from_stream(ws: WebSocketStream<S>) -> Ws<S> {
        Ws { ws }
    }

    /// The WebSocket itself, for reading frames raw.
    pub fn into_inner(self) -> WebSocketStream<S> {
        self.ws
    }

    // ------------------------------------------------------------ sending

    /// Send one protocol message.
    pub async fn send(&mut self, m: &ClientMsg) {
        self.send_text(&msg::text(m)).await;
    }

    /// Send `text` as one text frame, valid or not.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("ws send");
    }

    /// Send any WebSocket message (binary, ping, …); a send error is
    /// ignored, since the hub may already have closed on purpose.
    pub async fn send_raw(&mut self, m: Message) {
        let _ = self.ws.send(m).await;
    }

    /// `join`; `since: None` asks for a fresh snapshot.
    pub async fn join(&mut self, session: &str, token: &str, since: Option<i64>) {
        self.send(&msg::join(session, token, since)).await;
    }

    /// `add` by track id; `index: None` appends.
    pub async fn add(&mut self, req: &str, track_id: &str, index: Option<usize>) {
        self.send(&msg::add(req, track_id, index)).await;
    }

    /// `add` by metadata.
    pub async fn add_track(&mut self, req: &str, track: TrackBody, index: Option<usize>) {
        self.send(&msg::add_track(req, track, index)).await;
    }

    pub async fn remove(&mut self, req: &str, entry: &str) {
        self.send(&msg::remove(req, entry)).await;
    }

    pub async fn reorder(
        &mut self,
        req: &str,
        entry: &str,
        to_index: usize,
        base_version: Option<i64>,
    ) {
        self.send(&msg::reorder(req, entry, to_index, base_version))
            .await;
    }

    pub async fn interaction(&mut self, req: &str, track_id: &str, kind: &str) {
        self.send(&msg::interaction(req, track_id, kind)).await;
    }

    pub async fn leave(&mut self) {
        self.send(&msg::leave()).await;
    }

    /// Start the closing handshake with `code` and wait for the hub's answer.
    pub async fn close(&mut self, code: u16) -> Closed {
        self.ws
            .send(Message::Close(Some(CloseFrame {
                code: code.into(),
                reason: "".into(),
            })))
            .await
            .expect("send close");
        self.closed().await
    }

    // ------------------------------------------------------------ receiving

    /// The next text frame's JSON (pings and pongs skipped); panics after
    /// [`WAIT`], on a close, or on a frame that is not JSON text.
    pub async fn recv_value(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a frame")
                .expect("connection ended")
                .expect("ws error");
            match m {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("json frame"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// The next server message; panics like [`Ws::recv_value`], or on a
    /// frame that is not a protocol message.
    pub async fn recv(&mut self) -> ServerMsg {
        let v = self.recv_value().await;
        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("undecodable frame {v}: {e}"))
    }

    /// The next message that is not `presence`.
    pub async fn recv_np(&mut self) -> ServerMsg {
        self.recv_until(|m| !matches!(m, ServerMsg::Presence { .. }))
            .await
    }

    /// Skip messages until one that `want` accepts, and return it.
    pub async fn recv_until(&mut self, want: impl Fn(&ServerMsg) -> bool) -> ServerMsg {
        loop {
            let m = self.recv().await;
            if want(&m) {
                return m;
            }
        }
    }

    /// The next message if one arrives within [`QUIET`], else `None`: to
    /// check that the hub sent nothing.
    pub async fn try_recv(&mut self) -> Option<ServerMsg> {
        loop {
            match tokio::time::timeout(QUIET, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    return Some(
                        serde_json::from_str(t.as_str())
                            .unwrap_or_else(|e| panic!("undecodable frame {}: {e}", t.as_str())),
                    )
                }
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Err(_) => return None,
                Ok(other) => panic!("expected silence or a message, got {other:?}"),
            }
        }
    }

    /// The next message, or `None` once the connection is gone (closed,
    /// reset, or silent for [`WAIT`]): for clients the hub may die under.
    /// Text that is not a protocol message is skipped.
    pub async fn recv_opt(&mut self) -> Option<ServerMsg> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    if let Ok(m) = serde_json::from_str(t.as_str()) {
                        return Some(m);
                    }
                }
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                _ => return None,
            }
        }
    }

    /// Wait for the close, skipping any frames before it.
    pub async fn closed(&mut self) -> Closed {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for close")
            {
                Some(Ok(Message::Close(Some(f)))) => return Closed::Code(u16::from(f.code)),
                Some(Ok(Message::Close(None))) => {
                    return Closed::Code(u16::from(CloseCode::Status))
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Closed::Dropped,
            }
        }
    }

    // ------------------------------------------------------------ outcomes

    /// `join` (no `since`) and expect the snapshot.
    pub async fn join_snapshot(&mut self, session: &str, token: &str) -> Snapshot {
        self.join(session, token, None).await;
        match self.recv().await {
            ServerMsg::Snapshot(s) => s,
            other => panic!("expected snapshot, got {other:?}"),
        }
    }

    /// Expect an `update` next (presence skipped): its version and change.
    pub async fn expect_update(&mut self) -> (i64, Change) {
        match self.recv_np().await {
            ServerMsg::Update {
                version, change, ..
            } => (version, change),
            other => panic!("expected update, got {other:?}"),
        }
    }

    /// Expect the `ack` of `req` next (presence skipped); its version.
    pub async fn expect_ack(&mut self, req: &str) -> i64 {
        match self.recv_np().await {
            ServerMsg::Ack { req: r, version } => {
                assert_eq!(r, req, "ack req");
                version
            }
            other => panic!("expected the ack of {req}, got {other:?}"),
        }
    }

    /// Expect this sender's op `req` applied: its `update`, then its `ack`
    /// with the same version (presence skipped). Returns the version.
    pub async fn applied(&mut self, req: &str) -> i64 {
        let v = match self.recv_np().await {
            ServerMsg::Update { version, .. } => version,
            other => panic!("expected the update of {req}, got {other:?}"),
        };
        match self.recv_np().await {
            ServerMsg::Ack { req: r, version } => {
                assert_eq!((r.as_str(), version), (req, v), "ack of {req}")
            }
            other => panic!("expected the ack of {req}, got {other:?}"),
        }
        v
    }

    /// `add` by track id (appended) and expect it applied; returns (version,
    /// entry id).
    pub async fn add_acked(&mut self, req: &str, track_id: &str) -> (i64, String) {
        self.add(req, track_id, None).await;
        let (v, change) = self.expect_update().await;
        match self.recv_np().await {
            ServerMsg::Ack { req: r, version } => {
                assert_eq!((r.as_str(), version), (req, v), "ack of {req}");
            }
            other => panic!("expected ack, got {other:?}"),
        }
        (v, change.entry_id.expect("an add names its entry"))
    }

    /// Expect an `error` with `code` answering `req` (presence skipped);
    /// returns its message.
    pub async fn expect_error(&mut self, req: Option<&str>, code: ErrorCode) -> String {
        match self.recv_np().await {
            ServerMsg::Error {
                req: r,
                code: c,
                message,
            } => {
                assert_eq!(r.as_deref(), req, "error req ({message})");
                assert_eq!(c, code, "error code ({message})");
                message
            }
            other => panic!("expected error {}, got {other:?}", code.as_str()),
        }
    }
}
