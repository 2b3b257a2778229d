//! Cluster mode (`serve --nats URL`): several hubs serve the same sessions,
//! on NATS (messages between nodes) and Postgres (ownership and history).
//!
//! - Any node takes any connection. Each active session has one owner
//!   cluster-wide, the node holding its lease ([`lease`]); it runs the
//!   session's actor, the only writer, exactly as a single hub does.
//! - Every node with listeners of a session runs a relay for it
//!   ([`crate::hub::relay`]): its listeners' outboxes, fed by the events the
//!   owner publishes once per update ([`wire`]), in version order, gaps
//!   filled from Postgres.
//! - Ops, joins, snapshots and ends go to the owner by NATS request/reply;
//!   a request nobody answers makes the asking node take the lease.
//! - Nodes heartbeat; an owner removes the listeners of a node it has not
//!   heard from in [`NODE_TIMEOUT`] from presence.
//!
//! Without `--nats` none of this runs: the single hub is the default.
//!
//! This module is the cluster's plumbing (membership, NATS, leases, the
//! wire format) and knows nothing of sessions; the hub builds its relays
//! and owners on it ([`crate::hub::relay`], [`crate::hub::session::owner`]).

pub mod lease;
pub mod wire;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::client::RequestErrorKind;
use async_nats::{ConnectOptions, Subject};
use bytes::Bytes;
use dashmap::DashMap;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::ClusterConfig;
use crate::metrics::Metrics;
use lease::Leases;

/// A node's heartbeat period.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// A node not heard from for this long is gone: its listeners leave
/// presence.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a request to an owner may take.
pub const REQUEST_WAIT: Duration = Duration::from_secs(3);
/// How long one attempt of it waits before it is asked again. An owner
/// killed while it held the request never answers; asked again, NATS
/// answers "no responders" at once and a survivor takes the session over,
/// instead of everyone waiting out [`REQUEST_WAIT`]. Asking a live but slow
/// owner again is harmless: every request is idempotent (ops by `req`).
pub const ATTEMPT_WAIT: Duration = Duration::from_secs(1);
/// Messages waiting to be published at most; past it they are dropped
/// (NATS core is at-most-once anyway: relays fill gaps from Postgres, and
/// an unanswered request is retried with the same `req`).
const OUTGOING: usize = 65_536;

/// Why a request to an owner got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// Nobody subscribes: the session has no owner.
    NoOwner,
    /// Sent, but no answer in time: the outcome is unknown.
    TimedOut,
    /// Not sent (NATS unreachable).
    Failed,
}

/// This node's membership of a cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    nats: async_nats::Client,
    prefix: String,
    node: String,
    leases: Leases,
    /// Other nodes, by name: when each was last heard.
    nodes: DashMap<String, Instant>,
    connected: AtomicBool,
    /// When the NATS connection last came (back) up.
    up_since: Mutex<Instant>,
    /// Bumped at every reconnection: relays re-check what they missed.
    reconnects: watch::Sender<u64>,
    out: mpsc::Sender<(Subject, Bytes)>,
    metrics: Arc<Metrics>,
}

/// A session id as one NATS subject token: ids are usually cuids or
/// UUIDs; anything with other characters is hashed.
fn token(session_id: &str) -> String {
    let plain = !session_id.is_empty()
        && session_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        session_id.to_owned()
    } else {
        format!("x{:016x}", lease::lock_key(session_id))
    }
}

impl Cluster {
    /// Join the cluster `config` names. The NATS connection is made in the
    /// background (and remade whenever it drops): until it is up, `/readyz`
    /// says not ready and requests to other nodes fail.
    pub async fn join(
        config: &ClusterConfig,
        database_url: &str,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> anyhow::Result<Cluster> {
        let node = config
            .node_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let nats = ConnectOptions::new()
            .name(format!("audotics-hub {node}"))
            // Our own events reach our own relays directly.
            .no_echo()
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((50 * attempts as u64).min(1000))
            })
            .request_timeout(Some(REQUEST_WAIT))
            .event_callback(move |e| {
                let tx = events_tx.clone();
                async move {
                    let _ = tx.send(e);
                }
            })
            .connect(config.nats_url.as_str())
            .await?;
        let (out, out_rx) = mpsc::channel(OUTGOING);
        let leases = Leases::new(database_url, &node)?;
        let cluster = Cluster {
            inner: Arc::new(Inner {
                nats,
                prefix: config.name.clone(),
                node,
                leases,
                nodes: DashMap::new(),
                connected: AtomicBool::new(false),
                up_since: Mutex::new(Instant::now()),
                reconnects: watch::Sender::new(0),
                out,
                metrics,
            }),
        };
        tracing::info!(node = %cluster.node(), cluster = %config.name, "joining the cluster");
        let c = cluster.clone();
        let connection = async move {
            while let Some(e) = events.recv().await {
                c.on_nats_event(e);
            }
        };
        tokio::spawn(run_until(stop.clone(), connection));
        tokio::spawn(run_until(stop.clone(), publisher(cluster.clone(), out_rx)));
        tokio::spawn(run_until(stop.clone(), heartbeats(cluster.clone())));
        tokio::spawn(run_until(stop.clone(), check_leases(cluster.clone())));
        if cluster.inner.nats.connection_state() == async_nats::connection::State::Connected {
            cluster.on_nats_event(async_nats::Event::Connected);
        }
        Ok(cluster)
    }

    pub fn node(&self) -> &str {
        &self.inner.node
    }

    pub fn leases(&self) -> &Leases {
        &self.inner.leases
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The largest message the NATS server takes.
    pub fn max_payload(&self) -> usize {
        self.inner.nats.server_info().max_payload
    }

    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Relaxed)
    }

    /// Bumped at every NATS reconnection.
    pub fn reconnects(&self) -> watch::Receiver<u64> {
        self.inner.reconnects.subscribe()
    }

    /// Where a session's owner takes requests.
    pub fn requests_subject(&self, session_id: &str) -> Subject {
        format!("{}.s.{}.req", self.inner.prefix, token(session_id)).into()
    }

    /// Where a session's owner publishes events.
    pub fn events_subject(&self, session_id: &str) -> Subject {
        format!("{}.s.{}.ev", self.inner.prefix, token(session_id)).into()
    }

    fn nodes_subject(&self) -> String {
        format!("{}.node", self.inner.prefix)
    }

    pub async fn subscribe(
        &self,
        subject: Subject,
    ) -> Result<async_nats::Subscriber, async_nats::SubscribeError> {
        self.inner.nats.subscribe(subject).await
    }

    /// Publish without waiting; dropped when the outgoing queue is full.
    pub fn publish(&self, subject: Subject, payload: Bytes) {
        if self.inner.out.try_send((subject, payload)).is_err() {
            self.inner.metrics.cluster_dropped.inc();
        }
    }

    /// Ask `subject`'s responder, waiting at most [`REQUEST_WAIT`].
    pub async fn request(&self, subject: Subject, payload: Bytes) -> Result<Bytes, Unanswered> {
        self.request_within(subject, payload, REQUEST_WAIT).await
    }

    /// Ask `subject`'s responder, waiting at most `wait`.
    pub async fn request_within(
        &self,
        subject: Subject,
        payload: Bytes,
        wait: Duration,
    ) -> Result<Bytes, Unanswered> {
        if !self.is_connected() {
            return Err(Unanswered::Failed);
        }
        let request = async_nats::Request::new()
            .payload(payload)
            .timeout(Some(wait));
        match self.inner.nats.send_request(subject, request).await {
            Ok(m) => Ok(m.payload),
            Err(e) => Err(match e.kind() {
                RequestErrorKind::NoResponders => Unanswered::NoOwner,
                RequestErrorKind::TimedOut => Unanswered::TimedOut,
                RequestErrorKind::Other => Unanswered::Failed,
            }),
        }
    }

    /// Whether `node` still counts as alive. A node whose own NATS link
    /// came back less than [`NODE_TIMEOUT`] ago (or is down) counts every
    /// node alive: it cannot tell silence from its own deafness.
    pub fn alive(&self, node: &str) -> bool {
        if node == self.inner.node || !self.is_connected() {
            return true;
        }
        let up = *self.inner.up_since.lock().expect("not poisoned");
        if up.elapsed() < NODE_TIMEOUT {
            return true;
        }
        self.inner
            .nodes
            .get(node)
            .is_some_and(|t| t.elapsed() < NODE_TIMEOUT)
    }

    /// Tell the others this node is leaving, and give up every lease.
    pub async fn leave(&self) {
        let bye = Bytes::from(format!("bye {}", self.inner.node));
        let _ = self.inner.nats.publish(self.nodes_subject(), bye).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.inner.nats.flush()).await;
        self.inner.leases.close().await;
    }

    fn on_nats_event(&self, e: async_nats::Event) {
        let m = &self.inner.metrics;
        match e {
            async_nats::Event::Connected => {
                if !self.inner.connected.swap(true, Ordering::Relaxed) {
                    tracing::info!("NATS connected");
                    *self.inner.up_since.lock().expect("not poisoned") = Instant::now();
                    m.nats_connected.set(1);
                    self.inner.reconnects.send_modify(|n| *n += 1);
                }
            }
            async_nats::Event::Disconnected | async_nats::Event::Closed => {
                if self.inner.connected.swap(false, Ordering::Relaxed) {
                    tracing::warn!("NATS disconnected; reconnecting");
                    m.nats_connected.set(0);
                    m.nats_disconnects.inc();
                }
            }
            async_nats::Event::SlowConsumer(_) => {
                tracing::warn!("NATS: a subscription fell behind and lost messages");
                m.cluster_dropped.inc();
            }
            other => tracing::info!(event = %other, "NATS"),
        }
    }
}

async fn run_until(stop: CancellationToken, work: impl std::future::Future<Output = ()>) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = work => {}
    }
}

async fn publisher(cluster: Cluster, mut rx: mpsc::Receiver<(Subject, Bytes)>) {
    while let Some((subject, payload)) = rx.recv().await {
        if let Err(e) = cluster.inner.nats.publish(subject, payload).await {
            tracing::debug!(error = %e, "cannot publish");
            cluster.inner.metrics.cluster_dropped.inc();
        }
    }
}

/// Say this node is alive every [`HEARTBEAT`], and keep track of the
/// others.
async fn heartbeats(cluster: Cluster) {
    let subject = cluster.nodes_subject();
    let mut sub = loop {
        match cluster.inner.nats.subscribe(subject.clone()).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to heartbeats");
                tokio::time::sleep(HEARTBEAT).await;
            }
        }
    };
    let mut every = tokio::time::interval(HEARTBEAT);
    let me = Bytes::from(cluster.inner.node.clone());
    loop {
        tokio::select! {
            _ = every.tick() => cluster.publish(subject.clone().into(), me.clone()),
            m = sub.next() => {
                let Some(m) = m else { return };
                let Ok(text) = std::str::from_utf8(&m.payload) else { continue };
                match text.strip_prefix("bye ") {
                    Some(gone) => {
                        cluster.inner.nodes.remove(gone);
                    }
                    None => {
                        cluster.inner.nodes.insert(text.to_owned(), Instant::now());
                    }
                }
            }
        }
    }
}

/// Check the lease connection every [`lease::CHECK_EVERY`]; losing it
/// stops every actor this node runs (their leases are gone).
async fn check_leases(cluster: Cluster) {
    let mut every = tokio::time::interval(lease::CHECK_EVERY);
    loop {
        every.tick().await;
        cluster.inner.leases.check().await;
        let held = cluster.inner.leases.held().await;
        cluster.inner.metrics.sessions_owned.set(held as i64);
    }
}
