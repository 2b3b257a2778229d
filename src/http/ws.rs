//! `GET /v1/ws`: one WebSocket connection = one listener of one session,
//! served by one task that reads the client's frames and writes what the
//! session actor queued in the listener's bounded outbox. Only the outbox
//! connects the connection to the actor, so a slow socket never blocks it.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ws::Utf8Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
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
use crate::config::HubConfig;
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
    // Debug level: a span per connection costs memory every idle listener
    // would hold; `RUST_LOG=audotics_hub=debug` turns them on.
    let span = tracing::debug_span!(
        "conn",
        session_id = tracing::field::Empty,
        user_id = tracing::field::Empty
    );
    let hub = st.hub.clone();
    let task = connection(on_upgrade, st, permit, ticket);
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

/// Token bucket for ops per connection (its rate and burst are the hub's).
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self, cfg: &HubConfig) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * cfg.ops_per_sec;
        self.tokens = (self.tokens + refill).min(cfg.ops_burst);
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
/// its future are most of what an idle listener costs, so there is one, and
/// it is written to stay small: not an `async fn`, whose body moves each
/// argument into a local and so holds it twice, but a block that uses what
/// it captured in place; and every byte held across an await is one each
/// idle listener keeps.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn holds its arguments twice"
)]
fn connection(
    on_upgrade: OnUpgrade,
    st: AppState,
    permit: OwnedSemaphorePermit,
    ticket: Option<ConnTicket>,
) -> impl Future<Output = ()> + Send {
    async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => return tracing::debug!(error = %e, "WebSocket upgrade failed"),
        };
        let cfg = st.hub.config();
        // A small read buffer: tungstenite's default (128 KiB) is sized for
        // big messages; client frames are ops of 100–300 bytes (256 B: one
        // or two reads per frame). Our own frames never pass through
        // tungstenite's write buffer (see `frames::FrameWriter`), which kept
        // the capacity of the largest frame a listener was ever sent (a long
        // queue's snapshot) for the life of the connection; it holds control
        // frames only.
        let max = cfg.max_message_bytes;
        let config = WebSocketConfig::default()
            .read_buffer_size(256)
            .write_buffer_size(0)
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        // Boxed: the socket's state sits apart from the task, which every
        // suspended state of the loop below would otherwise carry.
        let mut socket = Box::new(
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await,
        );
        serve(&mut socket, &st, ticket.as_ref()).await;
        drop(permit);
    }
}

/// What a connection keeps between wake-ups besides its socket, outbox
/// and timers. Each idle listener holds all of it for life.
struct Conn<'a> {
    st: &'a AppState,
    out: Outbox,
    joined: Option<Joined>,
    bucket: Bucket,
    /// Ops refused in a row.
    strikes: u32,
    /// Pings the client sent since `ping_window` began.
    pings: u32,
    ping_window: Instant,
}

/// What the loop does next, decided without awaiting: a value that is
/// alive across an await makes the task larger, so frames are read and
/// answered synchronously, and only what needs an await comes back here.
enum Step {
    /// Carry on.
    Read,
    /// Write this and whatever else is queued.
    Write(Outbound),
    /// Time to ping the client.
    Ping,
    Join(Box<protocol::Join>),
    Leave,
    /// An op is being handed to the session.
    Send(Sending),
    End(End),
}

/// How long a socket may go without a frame from the peer, or without
/// accepting our bytes, before it is cut.
fn silence(cfg: &HubConfig) -> Duration {
    cfg.ping_interval + cfg.ping_interval / 2
}

/// The connection's loop, from the upgraded socket to its close. Like
/// [`connection`], a block rather than an `async fn`, so its arguments are
/// held once.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn holds its arguments twice"
)]
fn serve<'a>(
    socket: &'a mut Socket,
    st: &'a AppState,
    ticket: Option<&'a ConnTicket>,
) -> impl Future<Output = ()> + Send + 'a {
    async move {
        let cfg = st.hub.config();
        st.metrics.connections.inc();
        let (out, mut rx) = outbox(cfg.outbound_frames, cfg.outbound_bytes);
        // Until it joins, the gate may close this connection to make room.
        if let Some(t) = ticket {
            t.0.upgraded(out.clone());
        }
        let now = Instant::now();
        let mut conn = Conn {
            st,
            out,
            joined: None,
            bucket: Bucket {
                tokens: cfg.ops_burst,
                last: now,
            },
            strikes: 0,
            pings: 0,
            ping_window: now,
        };
        // The op being handed over: the next frame is read once it is, so a
        // connection's ops keep their order (in a cluster, once it is queued in
        // the connection's pipe to the owner).
        let mut sending: Option<Sending> = None;
        // Until the join, when the join must have come; then, when the peer
        // will have been silent too long (moved on by every frame it sends).
        let mut expires = now + cfg.join_timeout;
        let mut next_ping = now + cfg.ping_interval;

        // One timer, re-armed only when its deadline moves: a listener woken for
        // every update must not register a new timer each time.
        let timer = tokio::time::sleep_until(expires.min(next_ping).into());
        tokio::pin!(timer);
        // Made once too: every connection waits on the same token, and a fresh
        // `cancelled()` per wake-up registers (and removes) a waiter under that
        // token's one lock.
        let shutdown = st.hub.shutdown_token();
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        let end = loop {
            let wake_at = tokio::time::Instant::from_std(expires.min(next_ping));
            if timer.deadline() != wake_at {
                timer.as_mut().reset(wake_at);
            }
            let step = {
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
                match event {
                    Event::Shutdown => {
                        conn.out.close(CloseCode::GoingAway, "hub shutting down");
                        Step::End(End::Flush)
                    }
                    Event::Out(Err(code)) => Step::End(End::Cut(code)),
                    // The connection holds a sender itself, so the outbox never runs dry.
                    Event::Out(Ok(None)) => Step::End(End::Flush),
                    Event::Out(Ok(Some(first))) => {
                        if let Some(w) = rx.waited() {
                            st.metrics.outbox_wait.observe(w.as_secs_f64());
                        }
                        Step::Write(first)
                    }
                    Event::Timer => {
                        let now = Instant::now();
                        if now >= expires {
                            if conn.joined.is_none() {
                                conn.out.close(CloseCode::JoinTimeout, "join timeout");
                                Step::End(End::Flush)
                            } else {
                                Step::End(End::Cut(CloseCode::GoingAway))
                            }
                        } else if now >= next_ping {
                            next_ping = now + cfg.ping_interval;
                            Step::Ping
                        } else {
                            Step::Read
                        }
                    }
                    Event::Sent(true) => Step::Read,
                    Event::Sent(false) => {
                        // The actor stopped (ended or shutting down).
                        conn.out.close(CloseCode::GoingAway, "session closed");
                        Step::End(End::Flush)
                    }
                    Event::Peer(None) => Step::End(End::Gone),
                    Event::Peer(Some(Err(e))) => Step::End(End::Cut(close_code_for(&e))),
                    Event::Peer(Some(Ok(m))) => {
                        if conn.joined.is_some() {
                            expires = Instant::now() + silence(cfg);
                        }
                        conn.on_frame(m)
                    }
                }
            };
            match step {
                Step::Read => {}
                Step::Write(first) => {
                    let stop = Some(cancelled.as_mut());
                    // Boxed, like every await below: inline, the write's state
                    // (688 bytes) sat in every idle connection's task for its
                    // whole life; boxed, it costs one allocation per burst.
                    let write = write_queued(socket, &mut rx, first, silence(cfg), stop);
                    if let Some(end) = Box::pin(write).await.end() {
                        break end;
                    }
                }
                Step::Ping => {
                    // Like every write, the ping races the kill: a peer that
                    // stopped reading must not hold this task on a full socket.
                    let ping = socket.send(Message::Ping(Default::default()));
                    let ping = Box::pin(tokio::time::timeout(silence(cfg), ping));
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
                Step::Join(asked) => match Box::pin(join(st, &conn.out, *asked)).await {
                    JoinStep::Joined(j) => {
                        if let Some(t) = ticket {
                            t.0.prove();
                        }
                        conn.joined = Some(j);
                        expires = Instant::now() + silence(cfg);
                    }
                    JoinStep::Stay => {}
                    JoinStep::Close => break End::Flush,
                },
                Step::Leave => {
                    conn.leave().await;
                    conn.out.close(CloseCode::Normal, "left");
                    break End::Flush;
                }
                Step::Send(s) => sending = Some(s),
                Step::End(end) => break end,
            }
        };

        conn.leave().await;
        drop(conn);
        let finish = finish(socket, &mut rx, end, silence(cfg));
        let _ = Box::pin(tokio::time::timeout(CLOSE_GRACE * 2, finish)).await;
        st.metrics.connections.dec();
    }
}

impl Conn<'_> {
    /// Leave the session, if joined.
    async fn leave(&mut self) {
        if let Some(j) = &self.joined {
            Box::pin(j.handle.leave(j.listener)).await;
        }
        self.joined = None;
    }

    /// A frame from the client: answered here when no await is needed.
    fn on_frame(&mut self, msg: Message) -> Step {
        let text = match msg {
            Message::Text(t) => t,
            Message::Binary(_) => {
                self.out
                    .close(CloseCode::Unsupported, "binary frames are not supported");
                return Step::End(End::Flush);
            }
            Message::Ping(_) => {
                if self.ping_window.elapsed() > Duration::from_secs(1) {
                    (self.ping_window, self.pings) = (Instant::now(), 0);
                }
                self.pings += 1;
                if self.pings > MAX_PINGS_PER_SEC {
                    self.out.close(CloseCode::RateLimited, "ping flood");
                    return Step::End(End::Flush);
                }
                return Step::Read;
            }
            Message::Pong(_) | Message::Frame(_) => return Step::Read,
            Message::Close(_) => return Step::End(End::PeerClosed),
        };
        let msg = match protocol::parse_client(text.as_str()) {
            Ok(m) => m,
            Err((req, e)) => {
                push(&self.out, &Error::from(e).to_frame(req));
                return Step::Read;
            }
        };
        match (msg, &self.joined) {
            (ClientMsg::Ping(protocol::Ping { id }), _) => {
                let pong = ServerMsg::Pong { id, at: now_ms() };
                push(&self.out, &pong);
                Step::Read
            }
            (ClientMsg::Join(asked), None) => Step::Join(Box::new(asked)),
            (ClientMsg::Join(_), Some(_)) => {
                let e = Error::invalid("type", "already joined");
                push(&self.out, &e.to_frame(None));
                Step::Read
            }
            (msg, None) => {
                let req = protocol::msg_req(&msg).map(str::to_owned);
                push(
                    &self.out,
                    &Error::invalid("type", "join first").to_frame(req),
                );
                Step::Read
            }
            (ClientMsg::Leave(_), Some(_)) => Step::Leave,
            (msg, Some(j)) if j.watch => {
                let req = protocol::msg_req(&msg).map(str::to_owned);
                let e = Error::Forbidden("a screen that watches sends no changes".into());
                push(&self.out, &e.to_frame(req));
                Step::Read
            }
            (msg, Some(j)) => {
                let req = protocol::msg_req(&msg).unwrap_or_default().to_owned();
                if !self.bucket.take(self.st.hub.config()) || !self.st.limits.op(j.user.as_str()) {
                    self.strikes += 1;
                    self.st
                        .metrics
                        .ops_refused
                        .get_or_create(&crate::metrics::CodeLabels {
                            code: "rate_limited",
                        })
                        .inc();
                    push(&self.out, &Error::RateLimited.to_frame(Some(req)));
                    if self.strikes >= self.st.hub.config().rate_strikes {
                        self.out
                            .close(CloseCode::RateLimited, "rate limited repeatedly");
                        return Step::End(End::Flush);
                    }
                    return Step::Read;
                }
                self.strikes = 0;
                match to_op(msg) {
                    Ok((req, op)) => {
                        Step::Send(j.handle.op(j.listener, &j.user, req, op, text.as_str()))
                    }
                    Err(e) => {
                        push(&self.out, &e.to_frame(Some(req)));
                        Step::Read
                    }
                }
            }
        }
    }
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
