//! A typed protocol client for tests: says `join`, `add`, … and expects
//! server messages, decoded with the hub's own wire types.

use std::time::Duration;

use audotics_protocol::model::Snapshot;
use audotics_protocol::ServerMsg;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{TestApp, TestUser};

pub const WAIT: Duration = Duration::from_secs(15);

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a connection ended, as seen by the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    Code(u16),
    /// The socket ended without a close frame.
    Dropped,
}

impl Client {
    pub async fn connect(app: &TestApp) -> Client {
        Self::connect_addr(&format!("ws://{}/v1/ws", app.addr)).await
    }

    pub async fn connect_addr(url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        Client { ws }
    }

    /// Connect and join; returns the client and its snapshot.
    pub async fn join(app: &TestApp, user: &TestUser, session: &str) -> (Client, Snapshot) {
        let mut c = Client::connect(app).await;
        c.send(json!({"type": "join", "sessionId": session, "token": user.token}))
            .await;
        match c.recv().await {
            ServerMsg::Snapshot(s) => (c, s),
            other => panic!("expected snapshot, got {other:?}"),
        }
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    pub async fn send_text(&mut self, s: &str) {
        self.ws.send(Message::text(s)).await.expect("ws send");
    }

    pub async fn send_raw(&mut self, m: Message) {
        let _ = self.ws.send(m).await;
    }

    /// The next protocol message (pings are skipped).
    pub async fn recv(&mut self) -> ServerMsg {
        let v = self.recv_value().await;
        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("undecodable frame {v}: {e}"))
    }

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

    /// The next text frame, or `None` once the connection is gone.
    pub async fn try_recv_value(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).ok(),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                _ => return None,
            }
        }
    }

    /// Skip presence/interaction frames until a frame that `want` accepts.
    pub async fn recv_until(&mut self, want: impl Fn(&ServerMsg) -> bool) -> ServerMsg {
        loop {
            let m = self.recv().await;
            if want(&m) {
                return m;
            }
        }
    }

    /// Next frame that is not `presence`.
    pub async fn recv_np(&mut self) -> ServerMsg {
        self.recv_until(|m| !matches!(m, ServerMsg::Presence { .. }))
            .await
    }

    /// Start the closing handshake with `code` and wait for the hub's answer.
    pub async fn close(&mut self, code: u16) -> Closed {
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;
        self.ws
            .send(Message::Close(Some(CloseFrame {
                code: code.into(),
                reason: "".into(),
            })))
            .await
            .expect("send close");
        self.closed().await
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

    /// Add by track id; returns (version of the update, entry id) after the
    /// sender got its update and then its ack.
    pub async fn add(&mut self, req: &str, track_id: &str) -> (i64, String) {
        self.send(json!({"type": "add", "req": req, "trackId": track_id}))
            .await;
        let (v, e) = match self.recv_np().await {
            ServerMsg::Update {
                version, change, ..
            } => (version, change.entry_id),
            other => panic!("expected update, got {other:?}"),
        };
        match self.recv_np().await {
            ServerMsg::Ack { req: r, version } => {
                assert_eq!((r.as_str(), version), (req, v));
            }
            other => panic!("expected ack, got {other:?}"),
        }
        (v, e)
    }

    /// Expect this sender's op to be applied as `version`: its `update`,
    /// then its `ack` (presence frames skipped).
    pub async fn applied(&mut self, version: i64) {
        match self.recv_np().await {
            ServerMsg::Update { version: v, .. } => assert_eq!(v, version, "update version"),
            other => panic!("expected update {version}, got {other:?}"),
        }
        match self.recv_np().await {
            ServerMsg::Ack { version: v, .. } => assert_eq!(v, version, "ack version"),
            other => panic!("expected ack {version}, got {other:?}"),
        }
    }

    /// Expect an `error` with `code` answering `req`.
    pub async fn expect_error(&mut self, req: Option<&str>, code: &str) -> String {
        match self.recv_np().await {
            ServerMsg::Error {
                req: r,
                code: c,
                message,
            } => {
                assert_eq!(r.as_deref(), req, "error req ({message})");
                assert_eq!(c.as_str(), code, "error code ({message})");
                message
            }
            other => panic!("expected error {code}, got {other:?}"),
        }
    }
}
