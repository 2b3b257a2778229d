//! Prometheus metrics for `/metrics`. Each `App` owns its registry (not a
//! global recorder) so several hubs in one test process count separately.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: &'static str,
}

fn latency_histogram() -> Histogram {
    // 100 µs … ~3.3 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub pool_connections: Gauge,
    pub pool_idle: Gauge,
    pub live_sessions: Gauge,
    pub listeners: Gauge,
    pub connections: Gauge,
    pub connections_refused: Counter,
    pub http_connections: Gauge,
    pub http_connections_refused: Family<ReasonLabels, Counter>,
    pub ops_applied: Family<OpLabels, Counter>,
    pub ops_refused: Family<CodeLabels, Counter>,
    pub commit_batch_size: Histogram,
    pub commit_latency: Histogram,
    pub batch_latency: Histogram,
    pub op_wait: Histogram,
    pub outbox_wait: Histogram,
    pub resolve_latency: Histogram,
    pub commit_failures: Counter,
    pub slow_listener_disconnects: Counter,
    pub frames_sent: Counter,
    pub relays: Gauge,
    pub sessions_owned: Gauge,
    pub takeovers: Counter,
    pub deposed: Counter,
    pub forwarded_out: Counter,
    pub forward_requests: Counter,
    pub forwarded_in: Counter,
    pub forward_latency: Histogram,
    pub events_published: Counter,
    pub events_received: Counter,
    pub gaps_filled: Counter,
    pub nats_connected: Gauge,
    pub nats_disconnects: Counter,
    pub cluster_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("audotics");
        let m = Metrics {
            http_requests: Family::default(),
            http_latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            pool_connections: Gauge::default(),
            pool_idle: Gauge::default(),
            live_sessions: Gauge::default(),
            listeners: Gauge::default(),
            connections: Gauge::default(),
            connections_refused: Counter::default(),
            http_connections: Gauge::default(),
            http_connections_refused: Family::default(),
            ops_applied: Family::default(),
            ops_refused: Family::default(),
            commit_batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            commit_latency: latency_histogram(),
            batch_latency: latency_histogram(),
            op_wait: latency_histogram(),
            outbox_wait: latency_histogram(),
            resolve_latency: latency_histogram(),
            commit_failures: Counter::default(),
            slow_listener_disconnects: Counter::default(),
            frames_sent: Counter::default(),
            relays: Gauge::default(),
            sessions_owned: Gauge::default(),
            takeovers: Counter::default(),
            deposed: Counter::default(),
            forwarded_out: Counter::default(),
            forward_requests: Counter::default(),
            forwarded_in: Counter::default(),
            forward_latency: latency_histogram(),
            events_published: Counter::default(),
            events_received: Counter::default(),
            gaps_filled: Counter::default(),
            nats_connected: Gauge::default(),
            nats_disconnects: Counter::default(),
            cluster_dropped: Counter::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "http_requests",
            "HTTP requests by route and status",
            m.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            m.http_latency.clone(),
        );
        r.register(
            "db_pool_connections",
            "Open Postgres connections in the pool",
            m.pool_connections.clone(),
        );
        r.register(
            "db_pool_idle",
            "Idle Postgres connections in the pool",
            m.pool_idle.clone(),
        );
        r.register(
            "hub_live_sessions",
            "Session actors running",
            m.live_sessions.clone(),
        );
        r.register(
            "http_connections",
            "Open TCP connections (HTTP and WebSocket)",
            m.http_connections.clone(),
        );
        r.register(
            "http_connections_refused",
            "TCP connections refused at accept: the total or per-address cap was reached",
            m.http_connections_refused.clone(),
        );
        r.register(
            "hub_listeners",
            "Joined listener connections",
            m.listeners.clone(),
        );
        r.register(
            "hub_connections",
            "Open WebSocket connections",
            m.connections.clone(),
        );
        r.register(
            "hub_connections_refused",
            "WebSocket connections refused at the cap",
            m.connections_refused.clone(),
        );
        r.register(
            "hub_ops_applied",
            "Queue ops and interactions durably applied",
            m.ops_applied.clone(),
        );
        r.register(
            "hub_ops_refused",
            "Ops answered with an error, by code",
            m.ops_refused.clone(),
        );
        r.register(
            "hub_commit_batch_size",
            "Ops per group commit",
            m.commit_batch_size.clone(),
        );
        r.register(
            "hub_commit_duration_seconds",
            "Group commit latency",
            m.commit_latency.clone(),
        );
        r.register(
            "hub_batch_duration_seconds",
            "From a session actor taking a batch of ops to queueing its acks and updates",
            m.batch_latency.clone(),
        );
        r.register(
            "hub_op_wait_seconds",
            "From a connection handing an op to its session actor to the actor taking it",
            m.op_wait.clone(),
        );
        r.register(
            "hub_outbox_wait_seconds",
            "From a frame reaching an empty outbox to its connection taking it to write",
            m.outbox_wait.clone(),
        );
        r.register(
            "hub_track_lookup_duration_seconds",
            "Looking up the tracks a batch names",
            m.resolve_latency.clone(),
        );
        r.register(
            "hub_commit_failures",
            "Group commits that failed (ops answered unavailable)",
            m.commit_failures.clone(),
        );
        r.register(
            "hub_slow_listener_disconnects",
            "Listeners closed with 4008 for falling behind",
            m.slow_listener_disconnects.clone(),
        );
        r.register(
            "hub_frames_sent",
            "Frames queued to listeners",
            m.frames_sent.clone(),
        );
        r.register(
            "cluster_relays",
            "Sessions this node relays to its listeners (cluster mode)",
            m.relays.clone(),
        );
        r.register(
            "cluster_sessions_owned",
            "Session leases this node holds (cluster mode)",
            m.sessions_owned.clone(),
        );
        r.register(
            "cluster_takeovers",
            "Sessions this node took over (found no owner, took the lease)",
            m.takeovers.clone(),
        );
        r.register(
            "cluster_deposed",
            "Session actors stopped because another node took the session over or the lease was lost",
            m.deposed.clone(),
        );
        r.register(
            "cluster_ops_forwarded",
            "Ops this node sent to an owner on another node",
            m.forwarded_out.clone(),
        );
        r.register(
            "cluster_op_requests",
            "Requests that carried forwarded ops to an owner (each one connection's ops queued meanwhile, in order)",
            m.forward_requests.clone(),
        );
        r.register(
            "cluster_ops_received",
            "Ops other nodes forwarded to this node as owner",
            m.forwarded_in.clone(),
        );
        r.register(
            "cluster_op_duration_seconds",
            "From a request of forwarded ops leaving to its answers reaching the relay (cluster mode)",
            m.forward_latency.clone(),
        );
        r.register(
            "cluster_events_published",
            "Events published as owner (one per update, reaction, presence change)",
            m.events_published.clone(),
        );
        r.register(
            "cluster_events_received",
            "Events received from owners on other nodes",
            m.events_received.clone(),
        );
        r.register(
            "cluster_gaps_filled",
            "Times a relay read missing versions from Postgres",
            m.gaps_filled.clone(),
        );
        r.register(
            "cluster_nats_connected",
            "1 while the NATS connection is up",
            m.nats_connected.clone(),
        );
        r.register(
            "cluster_nats_disconnects",
            "Times the NATS connection dropped",
            m.nats_disconnects.clone(),
        );
        r.register(
            "cluster_messages_dropped",
            "Messages to or from NATS lost (outgoing queue full, slow subscription)",
            m.cluster_dropped.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
