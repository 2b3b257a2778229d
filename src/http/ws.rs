//! `GET /v1/ws`: one WebSocket connection = one listener of one session,
//! served by one task that reads the client's frames and writes what the
//! session actor queued in the listener's bounded outbox. Only the outbox
//! connects the connection to the actor, so a slow socket never blocks it.

use std::pin::Pin;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ws::Utf8Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::OwnedSemaphorePermit;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::WaitForCancellationFuture;

use super::frames::FrameWriter;
use super::server::ConnTicket;
use super::sockets::Registration;
use super::AppState;
use crate::clock::now_ms;
use crate::error::Error;
use crate::hub::outbox::{outbox, Outbound, Outbox, OutboxReceiver};
use crate::hub::session::listeners::Asks;
use crate::hub::session::parse::to_op;
use crate::hub::session::{frame, JoinRefusal, ListenerId};
use crate::hub::{Link, Sending};
use crate::{auth, db};
use audotics_protocol::{
    self as protocol, ClientMsg, CloseCode, IdError, ServerMsg, SessionId, UserId,
};
use tracing::Instrument;

/// Frames written per flush at most, so one busy listener's batch stays small.
const WRITE_BATCH: usize = 64;
/// Pings a client may send per second before it is closed with 4029.
const MAX_PINGS_PER_SEC: u32 = 50;
/// How long a close frame may take to write before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The socket a connection serves: tungstenite reads client frames and
/// writes control frames; [`FrameWriter`] writes our text frames directly.
type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Check the upgrade request, take a connection slot, answer 101 and serve
/// the socket in its own task.
pub async fn upgrade(State(st): State<AppState>, mut req: Request) -> Response {
    let key = match check_upgrade(&req) {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    let Some(permit) = st.hub.connection_permit() else {
        st.metrics.connections_refused.inc();
        tracing::warn!("connection limit reached; refusing a WebSocket");
        return connection_limit_response();
    };
    let ticket = req.extensions_mut().remove::<ConnTicket>();
    let on_upgrade = hyper::upgrade::on(&mut req);
    let max = st.hub.config().max_message_bytes;
    // A small read buffer: tungstenite's default (128 KiB) is sized for big
    // messages; client frames are ops of 100–300 bytes, and memory per idle
    // listener is what lets one hub hold tens of thousands (256 B: one or
    // two reads per frame). Our own frames never pass through tungstenite's
    // write buffer (see `frames::FrameWriter`), which kept the capacity of the
    // largest frame a listener was ever sent (a long queue's snapshot) for
    // the life of the connection; it holds control frames only.
    let config = WebSocketConfig::default()
        .read_buffer_size(256)
        .write_buffer_size(0)
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    // Debug level: a span per connection costs memory every idle listener
    // would hold; `RUST_LOG=audotics_hub=debug` turns them on.
    let span = tracing::debug_span!(
        "conn",
        session_id = tracing::field::Empty,
        user_id = tracing::field::Empty
    );
    let hub = st.hub.clone();
    let task = async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let socket = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                // Boxed: an async fn keeps its by-value arguments and the
                // locals they move into side by side, so the socket argument
                // cost every connection future twice its size.
                connection(Box::new(socket), st, permit, ticket).await;
            }
            Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
        }
    };
    hub.spawn_connection(task.instrument(span));
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        )
        .body(Body::empty())
        .expect("static response parts")
}

/// RFC 6455 §4.2.1 checks of an HTTP/1.1 upgrade request; the key to sign.
fn check_upgrade(req: &Request) -> Result<HeaderValue, Error> {
    let headers = req.headers();
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let refuse = |detail: &str| Err(Error::Malformed(detail.to_owned()));
    if req.version() != Version::HTTP_11 {
        return refuse("WebSocket upgrades need HTTP/1.1");
    }
    if !has(header::CONNECTION, "upgrade") || !has(header::UPGRADE, "websocket") {
        return refuse("expected Connection: upgrade and Upgrade: websocket");
    }
    if !has(header::SEC_WEBSOCKET_VERSION, "13") {
        return Err(Error::WebSocketVersion);
    }
    match headers.get(header::SEC_WEBSOCKET_KEY) {
        Some(key) if !key.is_empty() => Ok(key.clone()),
        _ => refuse("missing Sec-WebSocket-Key"),
    }
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
    handle: Link,
    listener: ListenerId,
    user: UserId,
    /// A screen that watches: it sends no ops.
    watch: bool,
    /// Closes this socket with 4001 if its token is revoked.
    _token: Registration,
}

/// What woke the connection task.
enum Event {
    Peer(Option<Result<Message, tungstenite::Error>>),
    /// The op in flight was handed over (false: the session is gone).
    Sent(bool),
    Out(Result<Option<Outbound>, CloseCode>),
    Timer,
    Shutdown,
}

/// How the connection loop ended.
enum End {
    /// Write what is queued up to its close frame (or a kill), then drain.
    Flush,
    /// Send this close code now, dropping what is queued.
    Cut(CloseCode),
    /// Our close frame is sent: read until the peer answers it.
    Drain,
    /// The peer closed: send tungstenite's queued answer, nothing more.
    PeerClosed,
    /// The socket failed or ended.
    Gone,
}

/// One task per connection: it reads and parses the client's frames,
/// authenticates the `join`, enforces the rate limit, hands ops to the
/// session actor, and writes what the actor queued in the outbox. A task and
/// its future are most of what an idle listener costs, so there is one.
async fn connection(
    mut socket: Box<Socket>,
    st: AppState,
    _permit: OwnedSemaphorePermit,
    ticket: Option<ConnTicket>,
) {
    // Only what the loop needs: every byte held across an await is memory
    // each idle listener keeps.
    let cfg = st.hub.config();
    let (ping_interval, rate_strikes) = (cfg.ping_interval, cfg.rate_strikes);
    st.metrics.connections.inc();
    let (out, mut rx) = outbox(cfg.outbound_frames, cfg.outbound_bytes);
    // Until it joins, the gate may close this connection to make room.
    if let Some(t) = &ticket {
        t.0.upgraded(out.clone());
    }
    let shutdown = st.hub.shutdown_token();
    let join_deadline = Instant::now() + cfg.join_timeout;
    let silence = ping_interval + ping_interval / 2;
    let mut joined: Option<Joined> = None;
    let mut bucket = Bucket {
        tokens: cfg.ops_burst,
        rate: cfg.ops_per_sec,
        burst: cfg.ops_burst,
        last: Instant::now(),
    };
    let mut strikes = 0u32;
    // The op being handed over: the next frame is read once it is, so a
    // connection's ops keep their order (in a cluster, once it is queued in
    // the connection's pipe to the owner).
    let mut sending: Option<Sending> = None;
    let mut last_seen = Instant::now();
    let mut next_ping = Instant::now() + ping_interval;
    let (mut ping_window, mut pings) = (Instant::now(), 0u32);

    // One timer, re-armed only when its deadline moves: a listener woken for
    // every update must not register a new timer each time.
    let timer = tokio::time::sleep_until(join_deadline.min(next_ping).into());
    tokio::pin!(timer);
    // Made once too: every connection waits on the same token, and a fresh
    // `cancelled()` per wake-up registers (and removes) a waiter under that
    // token's one lock.
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    let end = loop {
        let deadline = match joined {
            None => join_deadline,
            Some(_) => last_seen + silence,
        };
        let wake_at = tokio::time::Instant::from_std(deadline.min(next_ping));
        if timer.deadline() != wake_at {
            timer.as_mut().reset(wake_at);
        }
        let event = tokio::select! {
            biased;
            _ = &mut cancelled => Event::Shutdown,
            item = rx.next() => Event::Out(item),
            sent = async { sending.as_mut().expect("guarded").await }, if sending.is_some() => {
                sending = None;
                Event::Sent(sent)
            }
            m = socket.next(), if sending.is_none() => Event::Peer(m),
            _ = &mut timer => Event::Timer,
        };
        let msg = match event {
            Event::Shutdown => {
                out.close(CloseCode::GoingAway, "hub shutting down");
                break End::Flush;
            }
            Event::Out(Err(code)) => break End::Cut(code),
            // The connection holds a sender itself, so the outbox never runs dry.
            Event::Out(Ok(None)) => break End::Flush,
            Event::Out(Ok(Some(first))) => {
                if let Some(w) = rx.waited() {
                    st.metrics.outbox_wait.observe(w.as_secs_f64());
                }
                let stop = Some(cancelled.as_mut());
                // Boxed, like the ping below: inline, the write's state (688
                // bytes) sat in every idle connection's task for its whole
                // life; boxed, it costs one allocation per burst written.
                match Box::pin(write_queued(&mut socket, &mut rx, first, silence, stop))
                    .await
                    .end()
                {
                    None => continue,
                    Some(end) => break end,
                }
            }
            Event::Timer => {
                let now = Instant::now();
                if now >= deadline {
                    if joined.is_none() {
                        out.close(CloseCode::JoinTimeout, "join timeout");
                        break End::Flush;
                    }
                    break End::Cut(CloseCode::GoingAway);
                }
                if now >= next_ping {
                    next_ping = now + ping_interval;
                    // Like every write, the ping races the kill: a peer that
                    // stopped reading must not hold this task on a full socket.
                    let ping = socket.send(Message::Ping(Default::default()));
                    let ping = Box::pin(tokio::time::timeout(silence, ping));
                    let sent = tokio::select! {
                        r = ping => match r {
                            Ok(r) => r.is_ok(),
                            Err(_) => break End::Cut(CloseCode::TooSlow),
                        },
                        code = rx.killed() => break End::Cut(code),
                    };
                    if !sent {
                        break End::Gone;
                    }
                }
                continue;
            }
            Event::Sent(true) => continue,
            Event::Sent(false) => {
                // The actor stopped (ended or shutting down).
                out.close(CloseCode::GoingAway, "session closed");
                break End::Flush;
            }
            Event::Peer(None) => break End::Gone,
            Event::Peer(Some(Err(e))) => break End::Cut(close_code_for(&e)),
            Event::Peer(Some(Ok(m))) => m,
        };
        last_seen = Instant::now();
        let text = match msg {
            Message::Text(t) => t,
            Message::Binary(_) => {
                out.close(CloseCode::Unsupported, "binary frames are not supported");
                break End::Flush;
            }
            Message::Ping(_) => {
                if ping_window.elapsed() > Duration::from_secs(1) {
                    (ping_window, pings) = (Instant::now(), 0);
                }
                pings += 1;
                if pings > MAX_PINGS_PER_SEC {
                    out.close(CloseCode::RateLimited, "ping flood");
                    break End::Flush;
                }
                continue;
            }
            Message::Pong(_) | Message::Frame(_) => continue,
            Message::Close(_) => break End::PeerClosed,
        };
        let parsed = protocol::parse_client(text.as_str());
        // Boxed: a `ClientMsg` is 208 bytes, and one held across the join's
        // await made every connection's task that much larger for life.
        let msg = match parsed {
            Ok(m) => Box::new(m),
            Err((req, e)) => {
                push(&out, &Error::from(e).to_frame(req));
                continue;
            }
        };
        match (&*msg, &joined) {
            (ClientMsg::Ping(protocol::Ping { id }), _) => {
                push(
                    &out,
                    &ServerMsg::Pong {
                        id: *id,
                        at: now_ms(),
                    },
                );
            }
            (ClientMsg::Join(asked), None) => {
                match Box::pin(join(&st, &out, asked.clone())).await {
                    JoinStep::Joined(j) => {
                        if let Some(t) = &ticket {
                            t.0.prove();
                        }
                        joined = Some(j);
                    }
                    JoinStep::Stay => {}
                    JoinStep::Close => break End::Flush,
                }
            }
            (ClientMsg::Join(_), Some(_)) => {
                push(
                    &out,
                    &Error::invalid("type", "already joined").to_frame(None),
                );
            }
            (msg, None) => {
                let req = protocol::msg_req(msg).map(str::to_owned);
                push(&out, &Error::invalid("type", "join first").to_frame(req));
            }
            (ClientMsg::Leave(_), Some(j)) => {
                Box::pin(j.handle.leave(j.listener)).await;
                joined = None;
                out.close(CloseCode::Normal, "left");
                break End::Flush;
            }
            (msg, Some(j)) if j.watch => {
                let req = protocol::msg_req(msg).map(str::to_owned);
                let e = Error::Forbidden("a screen that watches sends no changes".into());
                push(&out, &e.to_frame(req));
            }
            (m, Some(j)) => {
                let req = protocol::msg_req(m).unwrap_or_default().to_owned();
                if !bucket.take() || !st.limits.op(j.user.as_str()) {
                    strikes += 1;
                    st.metrics
                        .ops_refused
                        .get_or_create(&crate::metrics::CodeLabels {
                            code: "rate_limited",
                        })
                        .inc();
                    push(&out, &Error::RateLimited.to_frame(Some(req)));
                    if strikes >= rate_strikes {
                        out.close(CloseCode::RateLimited, "rate limited repeatedly");
                        break End::Flush;
                    }
                    continue;
                }
                strikes = 0;
                match to_op(*msg) {
                    Ok((req, op)) => {
                        sending = Some(j.handle.op(j.listener, &j.user, req, op, text.as_str()));
                    }
                    Err(e) => push(&out, &e.to_frame(Some(req))),
                }
            }
        }
    };

    if let Some(j) = joined.take() {
        Box::pin(j.handle.leave(j.listener)).await;
    }
    drop(out);
    let finish = Box::pin(finish(&mut socket, &mut rx, end, silence));
    let _ = tokio::time::timeout(CLOSE_GRACE * 2, finish).await;
    st.metrics.connections.dec();
}

/// Write what we were told to (up to a close frame), then read, and drop,
/// whatever the peer still sends until it answers the close: closing a
/// socket with unread data resets it, and the peer could lose our close
/// frame. Then cut the connection.
async fn finish(socket: &mut Socket, rx: &mut OutboxReceiver, mut end: End, silence: Duration) {
    loop {
        end = match end {
            End::Gone => return,
            End::PeerClosed => {
                let _ = tokio::time::timeout(CLOSE_GRACE, socket.flush()).await;
                return;
            }
            End::Cut(code) => {
                send_close(socket, code, close_reason(code)).await;
                End::Drain
            }
            End::Drain => {
                while let Some(Ok(m)) = socket.next().await {
                    if matches!(m, Message::Close(_)) {
                        break;
                    }
                }
                return;
            }
            End::Flush => match rx.next().await {
                Ok(Some(first)) => write_queued(socket, rx, first, silence, None)
                    .await
                    .end()
                    .unwrap_or(End::Flush),
                Ok(None) => {
                    let _ = tokio::time::timeout(CLOSE_GRACE, SinkExt::close(socket)).await;
                    End::Drain
                }
                Err(code) => End::Cut(code),
            },
        };
    }
}

enum JoinStep {
    Joined(Joined),
    Stay,
    Close,
}

async fn join(st: &AppState, out: &Outbox, asked: protocol::Join) -> JoinStep {
    let protocol::Join {
        session_id,
        token,
        since,
        suggestions,
        watch,
    } = asked;
    let asks = Asks { suggestions, watch };
    if since.is_some_and(|s| s < 0) {
        push(
            out,
            &Error::invalid("since", "must be 0 or more").to_frame(None),
        );
        return JoinStep::Stay;
    }
    let user = match db::tokens::authenticate(&st.db, &token, st.config.token_lifetime).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            push(out, &Error::Unauthorized.to_frame(None));
            out.close(CloseCode::Unauthorized, "unauthorized");
            return JoinStep::Close;
        }
        Err(e) => {
            push(out, &e.to_frame(None));
            return JoinStep::Stay;
        }
    };
    let session_id = match SessionId::parse(&session_id) {
        Ok(id) => id,
        // Nothing Postgres would refuse travels on; the client may join again.
        Err(IdError::ControlCharacter) => {
            let e = Error::invalid("sessionId", IdError::ControlCharacter.to_string());
            push(out, &e.to_frame(None));
            return JoinStep::Stay;
        }
        Err(_) => {
            push(out, &Error::NotFound("session").to_frame(None));
            out.close(CloseCode::NotFound, "session not found");
            return JoinStep::Close;
        }
    };
    let span = tracing::Span::current();
    span.record("session_id", tracing::field::display(&session_id));
    span.record("user_id", tracing::field::display(&user.id));
    let user_id = UserId::from_stored(user.id.clone());
    match st
        .hub
        .join(&session_id, user, since, asks, out.clone())
        .await
    {
        Ok((handle, listener)) => JoinStep::Joined(Joined {
            handle,
            listener,
            user: user_id,
            watch,
            _token: st.sockets.register(auth::token_hash(&token), out.clone()),
        }),
        Err(JoinRefusal::NotFound) => {
            push(out, &Error::NotFound("session").to_frame(None));
            out.close(CloseCode::NotFound, "session not found");
            JoinStep::Close
        }
        Err(JoinRefusal::Banned) => {
            let e = Error::Forbidden("a host banned you from this session".into());
            push(out, &e.to_frame(None));
            out.close(CloseCode::Banned, "banned from the session");
            JoinStep::Close
        }
        Err(JoinRefusal::Ended) => {
            out.close(CloseCode::Ended, "session ended");
            JoinStep::Close
        }
        Err(JoinRefusal::Unavailable) => {
            push(out, &Error::Unavailable.to_frame(None));
            JoinStep::Stay
        }
    }
}

fn push(out: &Outbox, msg: &ServerMsg) {
    let _ = out.push(frame(msg));
}

fn close_code_for(e: &tungstenite::Error) -> CloseCode {
    match e {
        tungstenite::Error::Capacity(_) => CloseCode::TooBig,
        tungstenite::Error::Utf8(_) => CloseCode::InvalidPayload,
        _ => CloseCode::ProtocolError,
    }
}

/// How writing the queued frames went.
enum Written {
    /// All written; keep going.
    More,
    /// A close frame from the queue was sent.
    Closed,
    /// The listener was cut off (or the hub stopped) while the socket was full.
    Killed(CloseCode),
    /// The socket accepted nothing for the silence limit.
    Stalled,
    /// The socket failed.
    Failed,
}

impl Written {
    /// How the connection ends after this write; `None`: it carries on.
    fn end(self) -> Option<End> {
        match self {
            Written::More => None,
            Written::Closed => Some(End::Drain),
            Written::Killed(code) => Some(End::Cut(code)),
            Written::Stalled => Some(End::Cut(CloseCode::TooSlow)),
            Written::Failed => Some(End::Gone),
        }
    }
}

/// Write `first` and whatever else is queued (up to `WRITE_BATCH` frames in
/// one write, see `FrameWriter`). The write races the outbox's kill: a
/// listener cut off while its socket is full gets its close best-effort
/// (after the frame in progress, so the stream stays well-formed) instead of
/// the task waiting on the socket until the peer reads.
async fn write_queued(
    socket: &mut Socket,
    rx: &mut OutboxReceiver,
    first: Outbound,
    stall: Duration,
    stop: Option<Pin<&mut WaitForCancellationFuture<'_>>>,
) -> Written {
    let mut batch = vec![first];
    rx.drain_into(&mut batch, WRITE_BATCH);
    let mut frames: Vec<Utf8Bytes> = Vec::with_capacity(batch.len());
    let mut closing = None;
    for item in batch {
        match item {
            Outbound::Frame(f) | Outbound::Opening(f) => frames.push(f),
            Outbound::Close(code, reason) => {
                closing = Some((code, reason));
                break;
            }
        }
    }
    if !frames.is_empty() {
        // Whatever tungstenite still holds (a pong) goes out first, whole.
        match tokio::time::timeout(stall, socket.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Written::Failed,
            Err(_) => return Written::Stalled,
        }
        let mut w = FrameWriter::new(&frames);
        let stopped = async {
            match stop {
                Some(stop) => stop.await,
                None => std::future::pending().await,
            }
        };
        let cut = tokio::select! {
            r = w.write_all(socket.get_mut(), stall) => match r {
                Ok(()) => None,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Written::Stalled,
                Err(_) => return Written::Failed,
            },
            code = rx.killed() => Some(code),
            _ = stopped => Some(CloseCode::GoingAway),
        };
        if let Some(code) = cut {
            // Complete the frame in progress (best effort), so the stream
            // stays well-formed for the close frame.
            let finished = w.finish_frame(socket.get_mut(), CLOSE_GRACE).await;
            return match finished {
                Ok(()) => Written::Killed(code),
                Err(_) => Written::Failed,
            };
        }
    }
    match closing {
        Some((code, reason)) => {
            send_close(socket, code, reason).await;
            Written::Closed
        }
        None => Written::More,
    }
}

fn close_reason(code: CloseCode) -> &'static str {
    if code == CloseCode::TooSlow {
        "too slow: resume with since"
    } else {
        ""
    }
}

async fn send_close(socket: &mut Socket, code: CloseCode, reason: &'static str) {
    let frame = CloseFrame {
        code: WsCloseCode::from(code.code()),
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, socket.send(Message::Close(Some(frame)))).await;
}
