//! `GET /v1/ws`: one WebSocket connection = one listener of one session.
//! The reader (this task) parses frames, authenticates the `join`, enforces
//! the rate limit and hands ops to the session actor; the writer task drains
//! the listener's bounded outbox to the socket and sends pings. Only the
//! outbox connects them to the actor, so a slow socket never blocks it.

use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use tokio::sync::OwnedSemaphorePermit;

use super::AppState;
use crate::db;
use crate::error::Error;
use crate::hub::outbox::{outbox, Outbound, Outbox, OutboxReceiver};
use crate::hub::session::{frame, JoinRefusal, ListenerId, Op, TrackRef};
use crate::hub::SessionHandle;
use crate::model::User;
use crate::protocol::{self, close, ClientMsg, ServerMsg};
use crate::validate;

/// Frames written per flush at most, so one busy listener's batch stays small.
const WRITE_BATCH: usize = 64;
/// Pings a client may send per second before it is closed with 4029.
const MAX_PINGS_PER_SEC: u32 = 50;
/// How long a close frame may take to write before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

pub async fn upgrade(State(st): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let Some(permit) = st.hub.connection_permit() else {
        st.metrics.connections_refused.inc();
        tracing::warn!("connection limit reached; refusing a WebSocket");
        return connection_limit_response();
    };
    let max = st.hub.config().max_message_bytes;
    // Small buffers: tungstenite's defaults (128 KiB each) are sized for big
    // messages; ours are small JSON frames, and memory per idle listener is
    // what lets one hub hold tens of thousands. The read buffer is zero-filled
    // to its capacity on every read, and the write buffer keeps the capacity
    // of its largest burst: 1 KiB / 2 KiB measured 17.6 → 11.3 KB per idle
    // listener (BENCHMARKS.md) with no loss of fan-out throughput.
    // No cap on the write buffer: tungstenite refuses (and we then drop the
    // connection over) any single frame larger than it, and a snapshot of a
    // long queue is one frame of several MB. What a listener may have
    // pending is bounded by its outbox (`outbound_bytes`) instead.
    ws.read_buffer_size(1024)
        .write_buffer_size(2 * 1024)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| connection(socket, st, permit))
}

/// 503 (as `HubConfig::max_connections` documents), problem+json with the
/// protocol's `unavailable` word, and a hint to retry shortly.
fn connection_limit_response() -> Response {
    let body = serde_json::json!({
        "type": "https://audotics.dev/problems/unavailable",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "connection limit reached, try again later",
        "code": "unavailable",
    });
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "application/problem+json"),
            (header::RETRY_AFTER, "1"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// Token bucket for ops per connection.
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Joined {
    handle: SessionHandle,
    listener: ListenerId,
    user: User,
}

async fn connection(socket: WebSocket, st: AppState, _permit: OwnedSemaphorePermit) {
    let cfg = st.hub.config().clone();
    st.metrics.connections.inc();
    let (sink, mut stream) = socket.split();
    let (out, out_rx) = outbox(cfg.outbound_frames, cfg.outbound_bytes);
    let mut writer = tokio::spawn(writer(sink, out_rx, cfg.ping_interval));
    let shutdown = st.hub.shutdown_token();
    let join_deadline = Instant::now() + cfg.join_timeout;
    let silence = cfg.ping_interval + cfg.ping_interval / 2;
    let mut joined: Option<Joined> = None;
    let mut bucket = Bucket {
        tokens: cfg.ops_burst,
        rate: cfg.ops_per_sec,
        burst: cfg.ops_burst,
        last: Instant::now(),
    };
    let mut strikes = 0u32;
    let mut last_seen = Instant::now();
    let (mut ping_window, mut pings) = (Instant::now(), 0u32);
    let mut writer_done = false;
    // The peer closed or the socket failed: nothing more to read.
    let mut peer_done = false;

    loop {
        let deadline = match joined {
            None => join_deadline,
            Some(_) => last_seen + silence,
        };
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = tokio::time::sleep_until(deadline.into()) => {
                if joined.is_none() {
                    out.close(close::JOIN_TIMEOUT, "join timeout");
                } else {
                    out.kill(close::GOING_AWAY);
                }
                break;
            }
            _ = shutdown.cancelled() => {
                out.close(close::GOING_AWAY, "hub shutting down");
                break;
            }
            _ = &mut writer => { writer_done = true; break; }
        };
        let msg = match msg {
            None => {
                peer_done = true;
                break;
            }
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                peer_done = true;
                out.kill(close_code_for(&e));
                break;
            }
        };
        last_seen = Instant::now();
        let text = match msg {
            Message::Text(t) => t,
            Message::Binary(_) => {
                out.close(close::UNSUPPORTED, "binary frames are not supported");
                break;
            }
            Message::Ping(_) => {
                if ping_window.elapsed() > Duration::from_secs(1) {
                    (ping_window, pings) = (Instant::now(), 0);
                }
                pings += 1;
                if pings > MAX_PINGS_PER_SEC {
                    out.close(close::RATE_LIMITED, "ping flood");
                    break;
                }
                continue;
            }
            Message::Pong(_) => continue,
            Message::Close(_) => {
                peer_done = true;
                break;
            }
        };
        let parsed = protocol::parse_client(text.as_str());
        let msg = match parsed {
            Ok(m) => m,
            Err((req, e)) => {
                push(&out, &ServerMsg::error(req, &e));
                continue;
            }
        };
        match (msg, &joined) {
            (
                ClientMsg::Join(protocol::Join {
                    session_id,
                    token,
                    since,
                }),
                None,
            ) => match Box::pin(join(&st, &out, session_id, token, since)).await {
                JoinStep::Joined(j) => joined = Some(j),
                JoinStep::Stay => {}
                JoinStep::Close => break,
            },
            (ClientMsg::Join(_), Some(_)) => {
                push(
                    &out,
                    &ServerMsg::error(None, &Error::invalid("type", "already joined")),
                );
            }
            (msg, None) => {
                let req = protocol::msg_req(&msg).map(str::to_owned);
                push(
                    &out,
                    &ServerMsg::error(req, &Error::invalid("type", "join first")),
                );
            }
            (ClientMsg::Leave(_), Some(j)) => {
                j.handle.leave(j.listener).await;
                joined = None;
                out.close(close::NORMAL, "left");
                break;
            }
            (msg, Some(j)) => {
                let req = protocol::msg_req(&msg).unwrap_or_default().to_owned();
                if !bucket.take() {
                    strikes += 1;
                    st.metrics
                        .ops_refused
                        .get_or_create(&crate::metrics::CodeLabels {
                            code: "rate_limited",
                        })
                        .inc();
                    push(&out, &ServerMsg::error(Some(req), &Error::RateLimited));
                    if strikes >= cfg.rate_strikes {
                        out.close(close::RATE_LIMITED, "rate limited repeatedly");
                        break;
                    }
                    continue;
                }
                strikes = 0;
                match to_op(msg) {
                    Ok(op) => {
                        if !j.handle.op(j.listener, &j.user.id, req, op).await {
                            // The actor stopped (ended or shutting down).
                            out.close(close::GOING_AWAY, "session closed");
                            break;
                        }
                    }
                    Err(e) => push(&out, &ServerMsg::error(Some(req), &e)),
                }
            }
        }
    }

    if let Some(j) = joined.take() {
        j.handle.leave(j.listener).await;
    }
    drop(out);
    // Let the writer send what it was told to (a close frame at most) while
    // we read, and drop, whatever the peer still sends until it answers the
    // close: closing a socket with unread data resets it, and the peer
    // could lose our close frame. Then cut the connection.
    let drain = async {
        while !peer_done {
            match stream.next().await {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => peer_done = true,
                Some(Ok(_)) => {}
            }
        }
    };
    let finish = async {
        if !writer_done {
            let _ = (&mut writer).await;
        }
    };
    if tokio::time::timeout(CLOSE_GRACE * 2, async { tokio::join!(drain, finish) })
        .await
        .is_err()
    {
        writer.abort();
    }
    st.metrics.connections.dec();
}

enum JoinStep {
    Joined(Joined),
    Stay,
    Close,
}

async fn join(
    st: &AppState,
    out: &Outbox,
    session_id: String,
    token: String,
    since: Option<i64>,
) -> JoinStep {
    if since.is_some_and(|s| s < 0) {
        push(
            out,
            &ServerMsg::error(None, &Error::invalid("since", "must be 0 or more")),
        );
        return JoinStep::Stay;
    }
    let user = match db::tokens::authenticate(&st.db, &token).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            push(out, &ServerMsg::error(None, &Error::Unauthorized));
            out.close(close::UNAUTHORIZED, "unauthorized");
            return JoinStep::Close;
        }
        Err(e) => {
            push(out, &ServerMsg::error(None, &e));
            return JoinStep::Stay;
        }
    };
    if session_id.is_empty() || session_id.len() > 64 {
        push(out, &ServerMsg::error(None, &Error::NotFound("session")));
        out.close(close::NOT_FOUND, "session not found");
        return JoinStep::Close;
    }
    match st
        .hub
        .join(&session_id, user.clone(), since, out.clone())
        .await
    {
        Ok((handle, listener)) => JoinStep::Joined(Joined {
            handle,
            listener,
            user,
        }),
        Err(JoinRefusal::NotFound) => {
            push(out, &ServerMsg::error(None, &Error::NotFound("session")));
            out.close(close::NOT_FOUND, "session not found");
            JoinStep::Close
        }
        Err(JoinRefusal::Ended) => {
            out.close(close::ENDED, "session ended");
            JoinStep::Close
        }
        Err(JoinRefusal::Unavailable) => {
            push(out, &ServerMsg::error(None, &Error::Unavailable));
            JoinStep::Stay
        }
    }
}

/// Check an op frame's fields and turn it into the actor's `Op`.
fn to_op(msg: ClientMsg) -> Result<Op, Error> {
    Ok(match msg {
        ClientMsg::Add(protocol::Add {
            track_id,
            track,
            index,
            ..
        }) => {
            let track = match (track_id, track) {
                (Some(_), Some(_)) => {
                    return Err(Error::invalid(
                        "track",
                        "give either trackId or track, not both",
                    ))
                }
                (None, None) => return Err(Error::invalid("trackId", "give trackId or track")),
                (Some(id), None) => TrackRef::Id(id),
                (None, Some(t)) => TrackRef::Meta(t.validate()?),
            };
            Op::Add { track, index }
        }
        ClientMsg::Remove(protocol::Remove { entry_id, .. }) => Op::Remove {
            entry_id: uuid::Uuid::parse_str(&entry_id).ok(),
        },
        ClientMsg::Reorder(protocol::Reorder {
            entry_id,
            to_index,
            base_version,
            ..
        }) => Op::Reorder {
            entry_id: uuid::Uuid::parse_str(&entry_id).ok(),
            to_index,
            base_version,
        },
        ClientMsg::Interaction(protocol::Interaction { track_id, kind, .. }) => {
            let kind = validate::text("kind", &kind, 32)?;
            if !kind.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                return Err(Error::invalid("kind", "must be lowercase letters or '_'"));
            }
            Op::Interaction { track_id, kind }
        }
        ClientMsg::Join(_) | ClientMsg::Leave(_) => {
            unreachable!("join and leave are handled by the connection")
        }
    })
}

fn push(out: &Outbox, msg: &ServerMsg) {
    let _ = out.push(frame(msg));
}

fn close_code_for(e: &axum::Error) -> u16 {
    let text = e.to_string();
    if text.contains("Space limit exceeded")
        || text.contains("too long")
        || text.contains("too big")
    {
        close::TOO_BIG
    } else if text.contains("UTF-8") || text.contains("utf-8") || text.contains("Utf8") {
        close::INVALID_PAYLOAD
    } else {
        close::PROTOCOL_ERROR
    }
}

/// Drain the outbox to the socket, batching frames per flush, and ping.
/// Every write races the outbox's kill: a listener cut off while its socket
/// is full gets its close best-effort and then the connection is dropped,
/// instead of the writer waiting on the socket until the peer reads.
async fn writer(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: OutboxReceiver,
    ping_every: Duration,
) {
    let mut ping = tokio::time::interval(ping_every);
    ping.tick().await;
    loop {
        let mut batch = Vec::new();
        let mut closing = None;
        tokio::select! {
            item = rx.next() => match item {
                Ok(Some(Outbound::Frame(f))) => {
                    batch.push(Message::Text(f));
                    for _ in 0..WRITE_BATCH {
                        match rx.try_next() {
                            Some(Outbound::Frame(f)) => batch.push(Message::Text(f)),
                            Some(Outbound::Close(code, reason)) => {
                                closing = Some((code, reason));
                                break;
                            }
                            None => break,
                        }
                    }
                }
                Ok(Some(Outbound::Close(code, reason))) => closing = Some((code, reason)),
                Ok(None) => {
                    let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
                    return;
                }
                Err(code) => {
                    send_close(&mut sink, code, close_reason(code)).await;
                    return;
                }
            },
            _ = ping.tick() => batch.push(Message::Ping(Default::default())),
        }
        let written = tokio::select! {
            ok = write_all(&mut sink, batch) => ok,
            code = rx.killed() => {
                send_close(&mut sink, code, close_reason(code)).await;
                return;
            }
        };
        if !written {
            return;
        }
        if let Some((code, reason)) = closing {
            send_close(&mut sink, code, reason).await;
            return;
        }
    }
}

/// Feed `batch` and flush it; false when the socket failed.
async fn write_all(sink: &mut SplitSink<WebSocket, Message>, batch: Vec<Message>) -> bool {
    for m in batch {
        if sink.feed(m).await.is_err() {
            return false;
        }
    }
    sink.flush().await.is_ok()
}

fn close_reason(code: u16) -> &'static str {
    if code == close::TOO_SLOW {
        "too slow: resume with since"
    } else {
        ""
    }
}

async fn send_close(sink: &mut SplitSink<WebSocket, Message>, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
}
