//! Serving HTTP: the accept loop, with what keeps one client from
//! exhausting the hub. Each connection passes the [`Gate`] (caps, eviction
//! of idle unproven connections); hyper closes a connection that takes
//! longer than the header timeout to send a request head or sits idle that
//! long between requests; at shutdown, idle connections close at once and
//! requests in flight get a bounded grace, half-sent ones included.

use std::future::Future;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::gate::{Full, Gate, Ticket};
use crate::metrics::{Metrics, ReasonLabels};

/// How long requests in flight may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The connection's ticket, for handlers that take the connection over
/// (the WebSocket upgrade).
#[derive(Clone)]
pub struct ConnTicket(pub Arc<Ticket>);

/// Serve `router` on `listener` until `shutdown` resolves, then drain.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    gate: Arc<Gate>,
    header_timeout: Duration,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let tasks = TaskTracker::new();
    let stop = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let kill = CancellationToken::new();
        let ticket = match gate.admit(peer.ip(), kill.clone()) {
            Ok(t) => t,
            Err(full) => {
                let reason = match full {
                    Full::Total => "total",
                    Full::PerIp => "per_ip",
                };
                metrics
                    .http_connections_refused
                    .get_or_create(&ReasonLabels { reason })
                    .inc();
                refuse(tcp);
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let stop = stop.clone();
        tasks.spawn(connection(
            tcp,
            peer,
            router.clone(),
            ticket,
            header_timeout,
            kill,
            stop,
        ));
    }
    stop.cancel();
    tasks.close();
    if tokio::time::timeout(SHUTDOWN_GRACE * 2, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = tasks.len(),
            "HTTP connections left at shutdown"
        );
    }
}

/// `accept` failed: out of descriptors (the gate keeps the hub below that,
/// but other processes' load can still cause it) or a transient error.
async fn accept_failed(e: &std::io::Error) {
    let out_of_files = matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE));
    if out_of_files {
        tracing::warn!(error = %e, "accept failed: out of file descriptors");
        tokio::time::sleep(Duration::from_millis(100)).await;
    } else if e.kind() != ErrorKind::ConnectionAborted {
        tracing::debug!(error = %e, "accept failed");
    }
}

/// Answer 503 without reading the request, and close. Never waits: a
/// refused connection must not hold the accept loop.
fn refuse(tcp: TcpStream) {
    const BODY: &str = r#"{"type":"https://audotics.dev/problems/unavailable","title":"Service Unavailable","status":503,"detail":"connection limit reached, try again later","code":"unavailable"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tcp.try_write(response.as_bytes());
}

/// One HTTP/1.1 connection (upgrades included), until it ends, is closed
/// to make room (`kill`), or the hub stops (`stop`: idle connections close
/// at once, a request in flight gets the grace to finish).
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    ticket: Ticket,
    header_timeout: Duration,
    kill: CancellationToken,
    stop: CancellationToken,
) {
    let ticket = Arc::new(ticket);
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(ConnTicket(ticket.clone()));
        ticket.busy();
        let (router, ticket) = (router.clone(), ticket.clone());
        async move {
            let res = router.oneshot(req.map(Body::new)).await;
            ticket.idle();
            res
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(conn);
    let ended = tokio::select! {
        r = conn.as_mut() => Some(r),
        _ = kill.cancelled() => None,
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut()).await.ok()
        }
    };
    if let Some(Err(e)) = ended {
        tracing::debug!(error = %e, "HTTP connection ended");
    }
}
