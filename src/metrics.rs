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
