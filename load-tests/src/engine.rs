//! One worker process's run: connect its share of listeners and writers,
//! say READY, wait for GO, drive the measured window, drain, and print its
//! result. Every scenario is this engine with different numbers.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use audotics_protocol::ServerMsg;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncBufReadExt;
use tokio::sync::{Notify, Semaphore};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::common::*;

/// What the parent prepared and every worker reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Setup {
    pub nonce: String,
    pub floor: bool,
    /// Servers to connect to, chosen per connection by `spread`.
    pub dsts: Vec<SocketAddr>,
    /// How connections are spread over `dsts`.
    #[serde(default)]
    pub spread: Spread,
    pub ws_path: String,
    pub sessions: Vec<SessionSetup>,
    pub tokens: Vec<String>,
    pub tracks: Vec<String>,
    pub ring_path: String,
    pub plan: Plan,
    /// Servers (indexes into `dsts`) the writers go to, round-robin by
    /// connection number; empty: the same servers as the listeners.
    #[serde(default)]
    pub writer_dsts: Vec<usize>,
    /// Servers (indexes into `dsts`) the listeners go to; empty: all.
    #[serde(default)]
    pub listener_dsts: Vec<usize>,
}

/// How a run's connections are spread over its servers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Spread {
    /// Everything of session j on server j mod n: the floors, whose rooms
    /// live in one server each.
    #[default]
    BySession,
    /// Round-robin per connection: the hubs of a cluster, where any node
    /// takes any connection. Connection g goes to server g mod n, numbering
    /// the listeners first (over all sessions) and then the writers (session
    /// by session): a session's listeners, and consecutive writers, land on
    /// different servers, and the servers' loads differ by at most one.
    ByConnection,
}

/// One connection of a worker's share: session `j`, writer `w` (listeners:
/// 0), global index `g` (source address, token, seed) and its server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub j: usize,
    pub w: usize,
    pub g: usize,
    pub server: usize,
}

/// Worker `index` of `of`'s share of a plan: listener k (global) goes to
/// worker k mod of, session j's writer w to worker (j + w) mod of; each
/// connection's server is chosen by `spread` over `servers`.
pub fn share(
    plan: &Plan,
    spread: Spread,
    servers: usize,
    index: usize,
    of: usize,
) -> (Vec<Slot>, Vec<Slot>) {
    let all: Vec<usize> = (0..servers.max(1)).collect();
    share_pools(plan, spread, &all, &all, index, of)
}

/// [`share`] with the listeners' and the writers' servers given apart (as
/// indexes into the setup's `dsts`): connection g goes to pool[g mod len]
/// of its kind's pool (by session: pool[j mod len]).
pub fn share_pools(
    plan: &Plan,
    spread: Spread,
    listener_pool: &[usize],
    writer_pool: &[usize],
    index: usize,
    of: usize,
) -> (Vec<Slot>, Vec<Slot>) {
    let of = of.max(1);
    let pick = |pool: &[usize], j: usize, g: usize| {
        if pool.is_empty() {
            return 0;
        }
        match spread {
            Spread::BySession => pool[j % pool.len()],
            Spread::ByConnection => pool[g % pool.len()],
        }
    };
    let mut listeners = Vec::new();
    let mut g = 0usize;
    for (j, &n) in plan.listeners.iter().enumerate() {
        for _ in 0..n {
            if g % of == index {
                listeners.push(Slot {
                    j,
                    w: 0,
                    g,
                    server: pick(listener_pool, j, g),
                });
            }
            g += 1;
        }
    }
    let mut writers = Vec::new();
    for j in 0..plan.sessions {
        for w in 0..plan.writers {
            let i = j * plan.writers + w;
            if (j + w) % of == index {
                writers.push(Slot {
                    j,
                    w,
                    g: g + i,
                    server: pick(writer_pool, j, g + i),
                });
            }
        }
    }
    (listeners, writers)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionSetup {
    pub id: String,
    pub host_token: String,
}

/// The numbers of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub sessions: usize,
    /// Listeners of session j: `listeners[j]`.
    pub listeners: Vec<usize>,
    pub writers: usize,
    /// Ops per second over all writers.
    pub rate: f64,
    /// Ops a writer may have unanswered.
    pub window: usize,
    pub duration_s: f64,
    pub drain_s: f64,
    /// Rejoins per second over all listeners (churn).
    pub churn_rate: f64,
    pub source_ips: usize,
    pub connect_concurrency: usize,
    /// Connections per second per worker during the connect phase (0 = as fast as possible).
    pub connect_rate: f64,
}

impl Plan {
    pub fn total_listeners(&self) -> usize {
        self.listeners.iter().sum()
    }
    pub fn total_connections(&self) -> usize {
        self.total_listeners() + self.sessions * self.writers
    }
    /// Ring streams: one per session on the hub (it orders all writers);
    /// one per writer on the floor (each writer numbers its own frames).
    pub fn streams(&self, floor: bool) -> usize {
        if floor {
            self.sessions * self.writers.max(1)
        } else {
            self.sessions
        }
    }
}

#[derive(Default)]
struct Counters {
    listeners_joined: AtomicU64,
    writers_joined: AtomicU64,
    join_failures: AtomicU64,
    deliveries: AtomicU64,
    deliveries_in_window: AtomicU64,
    gaps: AtomicU64,
    missing: AtomicU64,
    out_of_order: AtomicU64,
    sent: AtomicU64,
    acked: AtomicU64,
    acked_in_window: AtomicU64,
    throttled: AtomicU64,
    rejoins: AtomicU64,
    resumed: AtomicU64,
    snapshots_on_rejoin: AtomicU64,
    unmatched: AtomicU64,
}

/// Joins and failures through one server.
#[derive(Default)]
struct ServerCounters {
    listeners: AtomicU64,
    writers: AtomicU64,
    failures: AtomicU64,
}

struct Shared {
    setup: Setup,
    ring: Ring,
    c: Counters,
    per_server: Vec<ServerCounters>,
    errors: Mutex<BTreeMap<String, u64>>,
    closes: Mutex<BTreeMap<String, u64>>,
    lat: Mutex<Histogram<u64>>,
    ack: Mutex<Histogram<u64>>,
    join: Mutex<Histogram<u64>>,
    /// Writers start sending.
    go: CancellationToken,
    /// Writers stop sending.
    stop: CancellationToken,
    /// Everyone hangs up.
    end: CancellationToken,
    window: (AtomicU64, AtomicU64),
}

impl Shared {
    fn err(&self, what: impl Into<String>) {
        *self.errors.lock().unwrap().entry(what.into()).or_default() += 1;
    }
    fn close(&self, code: String) {
        *self.closes.lock().unwrap().entry(code).or_default() += 1;
    }
    fn in_window(&self, t: u64) -> bool {
        let s = self.window.0.load(Relaxed);
        let e = self.window.1.load(Relaxed);
        s != 0 && t >= s && (e == 0 || t <= e)
    }
}

/// Latency samples buffered per task, flushed into the shared histogram.
struct Samples {
    buf: Vec<u64>,
}

impl Samples {
    fn new() -> Self {
        Samples {
            buf: Vec::with_capacity(64),
        }
    }
    fn push(&mut self, h: &Mutex<Histogram<u64>>, us: u64) {
        self.buf.push(us.max(1));
        if self.buf.len() >= 64 {
            self.flush(h);
        }
    }
    fn flush(&mut self, h: &Mutex<Histogram<u64>>) {
        if self.buf.is_empty() {
            return;
        }
        let mut h = h.lock().unwrap();
        for v in self.buf.drain(..) {
            h.saturating_record(v);
        }
    }
}

pub async fn run_worker(setup: Setup, index: usize, of: usize) -> anyhow::Result<()> {
    let plan = setup.plan.clone();
    let ring = Ring::open(
        std::path::Path::new(&setup.ring_path),
        plan.streams(setup.floor),
    )?;
    let pool = |p: &[usize]| -> Vec<usize> {
        if p.is_empty() {
            (0..setup.dsts.len()).collect()
        } else {
            p.to_vec()
        }
    };
    let (my_listeners, my_writers) = share_pools(
        &plan,
        setup.spread,
        &pool(&setup.listener_dsts),
        &pool(&setup.writer_dsts),
        index,
        of,
    );
    let mine = my_listeners.len() + my_writers.len();
    let limit = raise_nofile();
    if mine as u64 + 64 > limit {
        anyhow::bail!(
            "worker {index} would hold {mine} connections but may open only {limit} files: \
             use more --procs (each worker must stay under the per-process limit)"
        );
    }
    let sh = Arc::new(Shared {
        per_server: (0..setup.dsts.len())
            .map(|_| ServerCounters::default())
            .collect(),
        setup,
        ring,
        c: Counters::default(),
        errors: Mutex::default(),
        closes: Mutex::default(),
        lat: Mutex::new(new_hist()),
        ack: Mutex::new(new_hist()),
        join: Mutex::new(new_hist()),
        go: CancellationToken::new(),
        stop: CancellationToken::new(),
        end: CancellationToken::new(),
        window: (AtomicU64::new(0), AtomicU64::new(0)),
    });

    // Connect phase: bounded parallelism (and rate), every task reports
    // joined or failed on `ready`.
    let connect_start = now_ns();
    let sem = Arc::new(Semaphore::new(plan.connect_concurrency.max(1)));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut tasks = Vec::new();
    let mut churn_handles: Vec<Arc<Notify>> = Vec::new();
    let pace = if plan.connect_rate > 0.0 {
        Some(Duration::from_secs_f64(of as f64 / plan.connect_rate))
    } else {
        None
    };
    for &slot in &my_writers {
        let permit = sem.clone().acquire_owned().await?;
        let (sh, ready) = (sh.clone(), ready_tx.clone());
        tasks.push(tokio::spawn(async move {
            writer(sh, slot, permit, ready).await;
        }));
        if let Some(p) = pace {
            tokio::time::sleep(p).await;
        }
    }
    for &slot in &my_listeners {
        let permit = sem.clone().acquire_owned().await?;
        let (sh, ready) = (sh.clone(), ready_tx.clone());
        let churn = Arc::new(Notify::new());
        churn_handles.push(churn.clone());
        tasks.push(tokio::spawn(async move {
            listener(sh, slot, churn, permit, ready).await;
        }));
        if let Some(p) = pace {
            tokio::time::sleep(p).await;
        }
    }
    drop(ready_tx);
    for _ in 0..mine {
        if ready_rx.recv().await.is_none() {
            break;
        }
    }
    let connect_end = now_ns();
    println!(
        "READY {}",
        sh.c.listeners_joined.load(Relaxed) + sh.c.writers_joined.load(Relaxed)
    );

    // Wait for GO from the parent (or give up when stdin closes).
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        match stdin.next_line().await? {
            Some(l) if l.trim() == "GO" => break,
            Some(_) => continue,
            None => anyhow::bail!("parent went away before GO"),
        }
    }
    sh.window.0.store(now_ns(), Relaxed);
    sh.go.cancel();
    let churn_task = if plan.churn_rate > 0.0 && !churn_handles.is_empty() {
        let per = plan.churn_rate / of as f64;
        let handles = churn_handles.clone();
        let stop = sh.stop.clone();
        Some(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::from_entropy();
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let i = rng.gen_range(0..handles.len());
                        handles[i].notify_one();
                    }
                    _ = stop.cancelled() => return,
                }
            }
        }))
    } else {
        None
    };
    tokio::time::sleep(Duration::from_secs_f64(plan.duration_s)).await;
    sh.window.1.store(now_ns(), Relaxed);
    sh.stop.cancel();
    if let Some(t) = churn_task {
        let _ = t.await;
    }
    tokio::time::sleep(Duration::from_secs_f64(plan.drain_s)).await;
    sh.end.cancel();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }

    let c = &sh.c;
    let result = WorkerResult {
        connect_start_ns: connect_start,
        connect_end_ns: connect_end,
        window_start_ns: sh.window.0.load(Relaxed),
        window_end_ns: sh.window.1.load(Relaxed),
        listeners_joined: c.listeners_joined.load(Relaxed),
        writers_joined: c.writers_joined.load(Relaxed),
        join_failures: c.join_failures.load(Relaxed),
        deliveries: c.deliveries.load(Relaxed),
        deliveries_in_window: c.deliveries_in_window.load(Relaxed),
        gaps: c.gaps.load(Relaxed),
        missing_versions: c.missing.load(Relaxed),
        out_of_order: c.out_of_order.load(Relaxed),
        ops_sent: c.sent.load(Relaxed),
        ops_acked: c.acked.load(Relaxed),
        ops_acked_in_window: c.acked_in_window.load(Relaxed),
        throttled_ticks: c.throttled.load(Relaxed),
        rejoins: c.rejoins.load(Relaxed),
        resumed: c.resumed.load(Relaxed),
        snapshots_on_rejoin: c.snapshots_on_rejoin.load(Relaxed),
        latency_unmatched: c.unmatched.load(Relaxed),
        errors: sh.errors.lock().unwrap().clone(),
        closes: sh.closes.lock().unwrap().clone(),
        hist_latency: hist_to_b64(&sh.lat.lock().unwrap()),
        hist_ack: hist_to_b64(&sh.ack.lock().unwrap()),
        hist_join: hist_to_b64(&sh.join.lock().unwrap()),
        worker_rss_kib: rss_kib("self").unwrap_or(0),
        per_server: sh
            .per_server
            .iter()
            .map(|s| ServerCount {
                listeners_joined: s.listeners.load(Relaxed),
                writers_joined: s.writers.load(Relaxed),
                failures: s.failures.load(Relaxed),
            })
            .collect(),
    };
    println!("RESULT {}", serde_json::to_string(&result)?);
    Ok(())
}

/// Connect to the slot's server and join; returns the socket and the first
/// answer's text.
async fn connect_join(
    sh: &Shared,
    slot: Slot,
    token: &str,
    since: Option<i64>,
) -> Result<(Ws, String), String> {
    let src = source_ip(slot.g, sh.setup.plan.source_ips);
    let dst = sh.setup.dsts[slot.server];
    let session = &sh.setup.sessions[slot.j].id;
    join_at(dst, &sh.setup.ws_path, session, token, since, src).await
}

/// Connect to `dst` at `path` (from `src`) and join `session_id`; the
/// socket and the first answer (`snapshot`, `resumed`, or the floor's
/// `joined`).
pub async fn join_at(
    dst: SocketAddr,
    path: &str,
    session_id: &str,
    token: &str,
    since: Option<i64>,
    src: Option<std::net::Ipv4Addr>,
) -> Result<(Ws, String), String> {
    let mut ws = ws_connect(dst, path, src)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let join = match since {
        Some(v) => {
            serde_json::json!({"type":"join","sessionId":session_id,"token":token,"since":v})
        }
        None => serde_json::json!({"type":"join","sessionId":session_id,"token":token}),
    };
    ws.send(Message::text(join.to_string()))
        .await
        .map_err(|e| format!("send join: {e}"))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| "join: no answer in 30 s".to_owned())?;
        match m {
            Some(Ok(Message::Text(t))) => match frame_type(t.as_str()) {
                "snapshot" | "resumed" | "joined" => return Ok((ws, t.as_str().to_owned())),
                "error" => {
                    let code = serde_json::from_str::<serde_json::Value>(t.as_str())
                        .ok()
                        .and_then(|v| v["code"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    return Err(format!("join error {code}"));
                }
                _ => continue,
            },
            Some(Ok(Message::Close(f))) => {
                return Err(format!(
                    "join: closed {}",
                    f.map(|f| u16::from(f.code)).unwrap_or(1005)
                ))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("join: {e}")),
            None => return Err("join: connection ended".into()),
        }
    }
}

/// Version tracking of one listener: gap-free and in order, per stream.
struct Order {
    last: Vec<i64>,
    pending: VecDeque<(usize, i64, u64)>,
    samples: Samples,
    deliveries: u64,
    deliveries_in_window: u64,
}

impl Order {
    fn on_update(&mut self, sh: &Shared, j: usize, text: &str, t: u64) {
        let Some(v) = int_field(text, "\"version") else {
            sh.err("unparsable update");
            return;
        };
        let (slot, stream) = if sh.setup.floor {
            let w = int_field(text, "\"w").unwrap_or(0) as usize;
            (w, j * sh.setup.plan.writers.max(1) + w)
        } else {
            (0, j)
        };
        if slot >= self.last.len() {
            self.last.resize(slot + 1, 0);
        }
        let last = self.last[slot];
        if v == last + 1 {
        } else if v <= last {
            sh.c.out_of_order.fetch_add(1, Relaxed);
        } else {
            sh.c.gaps.fetch_add(1, Relaxed);
            sh.c.missing.fetch_add((v - last - 1) as u64, Relaxed);
        }
        if v > last {
            self.last[slot] = v;
        }
        // Counted locally and added once in `finish`: shared counters
        // bumped per delivery bounce a cache line between threads.
        self.deliveries += 1;
        if sh.in_window(t) {
            self.deliveries_in_window += 1;
        }
        self.pending.push_back((stream, v, t));
        if self.pending.len() > 4096 {
            self.pending.pop_front();
            sh.c.unmatched.fetch_add(1, Relaxed);
        }
        self.resolve(sh);
    }

    fn resolve(&mut self, sh: &Shared) {
        while let Some(&(stream, v, t)) = self.pending.front() {
            match sh.ring.lookup(stream, v) {
                Lookup::Sent(s) => {
                    self.samples.push(&sh.lat, t.saturating_sub(s) / 1000);
                }
                Lookup::Lost => {
                    sh.c.unmatched.fetch_add(1, Relaxed);
                }
                Lookup::NotYet => break,
            }
            self.pending.pop_front();
        }
    }

    fn finish(&mut self, sh: &Shared) {
        sh.c.deliveries
            .fetch_add(std::mem::take(&mut self.deliveries), Relaxed);
        sh.c.deliveries_in_window
            .fetch_add(std::mem::take(&mut self.deliveries_in_window), Relaxed);
        self.resolve(sh);
        sh.c.unmatched.fetch_add(self.pending.len() as u64, Relaxed);
        self.pending.clear();
        self.samples.flush(&sh.lat);
    }
}

fn first_version(text: &str) -> i64 {
    match frame_type(text) {
        "joined" => 0,
        _ => int_field(text, "\"version").unwrap_or(0),
    }
}

async fn listener(
    sh: Arc<Shared>,
    slot: Slot,
    churn: Arc<Notify>,
    permit: tokio::sync::OwnedSemaphorePermit,
    ready: tokio::sync::mpsc::UnboundedSender<()>,
) {
    let (j, gi) = (slot.j, slot.g);
    let server = &sh.per_server[slot.server];
    let token = sh.setup.tokens[gi % sh.setup.tokens.len().max(1)].clone();
    let mut order = Order {
        last: vec![0],
        pending: VecDeque::new(),
        samples: Samples::new(),
        deliveries: 0,
        deliveries_in_window: 0,
    };
    let mut permit = Some(permit);
    let mut since: Option<i64> = None;
    let mut first = true;
    let mut join_samples = Samples::new();
    'conn: loop {
        let t0 = now_ns();
        let (mut ws, answer) = match connect_join(&sh, slot, &token, since).await {
            Ok(x) => x,
            Err(e) => {
                sh.c.join_failures.fetch_add(1, Relaxed);
                server.failures.fetch_add(1, Relaxed);
                sh.err(e);
                if first {
                    let _ = ready.send(());
                    return;
                }
                if sh.end.is_cancelled() {
                    break 'conn;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        join_samples.push(&sh.join, (now_ns() - t0) / 1000);
        match frame_type(&answer) {
            "resumed" => {
                sh.c.resumed.fetch_add(1, Relaxed);
            }
            _ if !first => {
                sh.c.snapshots_on_rejoin.fetch_add(1, Relaxed);
                order.last = vec![first_version(&answer)];
            }
            _ => order.last = vec![first_version(&answer)],
        }
        if first {
            sh.c.listeners_joined.fetch_add(1, Relaxed);
            server.listeners.fetch_add(1, Relaxed);
            let _ = ready.send(());
            drop(permit.take());
            first = false;
        } else {
            sh.c.rejoins.fetch_add(1, Relaxed);
        }
        // Made once per connection, not per frame: each `notified()` /
        // `cancelled()` registers a waiter under a lock.
        let mut churned = std::pin::pin!(churn.notified());
        let mut ended = std::pin::pin!(sh.end.cancelled());
        loop {
            tokio::select! {
                m = ws.next() => match m {
                    Some(Ok(Message::Text(t))) => {
                        let now = now_ns();
                        if frame_type(t.as_str()) == "update" {
                            order.on_update(&sh, j, t.as_str(), now);
                        }
                    }
                    Some(Ok(Message::Close(f))) => {
                        sh.close(f.map(|f| u16::from(f.code).to_string()).unwrap_or("1005".into()));
                        break 'conn;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        sh.close("dropped".into());
                        break 'conn;
                    }
                },
                _ = &mut churned => {
                    // Leave, wait for the 1000 close, come back with since.
                    let _ = ws.send(Message::text(r#"{"type":"leave"}"#)).await;
                    let _ = tokio::time::timeout(Duration::from_secs(5), async {
                        while let Some(Ok(m)) = ws.next().await {
                            if let Message::Text(t) = &m {
                                if frame_type(t.as_str()) == "update" {
                                    order.on_update(&sh, j, t.as_str(), now_ns());
                                }
                            }
                            if matches!(m, Message::Close(_)) { break; }
                        }
                    }).await;
                    since = Some(order.last[0]);
                    continue 'conn;
                }
                _ = &mut ended => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                    break 'conn;
                }
            }
        }
    }
    drop(permit);
    order.finish(&sh);
    join_samples.flush(&sh.join);
}

/// The writer's view of its session's queue, kept from the updates it sees.
pub(crate) struct LocalQueue {
    pub(crate) entries: Vec<String>,
}

impl LocalQueue {
    pub(crate) fn apply(&mut self, change: &ChangeLite) {
        use audotics_protocol::OpKind;
        // Ops about no entry (a member change) leave the queue as it is.
        let Some(id) = change.entry_id.as_deref() else {
            return;
        };
        match change.op {
            OpKind::Add => {
                let i = change
                    .index
                    .unwrap_or(self.entries.len())
                    .min(self.entries.len());
                self.entries.insert(i, id.to_owned());
            }
            OpKind::Remove => {
                if let Some(p) = self.entries.iter().position(|e| e == id) {
                    self.entries.remove(p);
                }
            }
            OpKind::Reorder => {
                if let Some(p) = self.entries.iter().position(|e| e == id) {
                    let e = self.entries.remove(p);
                    let to = change.to_index.unwrap_or(0).min(self.entries.len());
                    self.entries.insert(to, e);
                }
            }
            // The generator sends only add/remove/reorder and never starts
            // playback, so party ops (votes, pins, playback, settings) do not
            // reach its sessions; a member change leaves the queue as it is.
            _ => {}
        }
    }
}

/// What a writer reads from an `update`, `ack` or `error` frame. A writer
/// decodes one frame per op and more per update, and its CPU comes out of
/// the same two cores as the hub's: the typed `ServerMsg` (an internally
/// tagged enum, which serde buffers whole, with the track and its
/// timestamps) cost a third of the generator's time in `ops`. The frame's
/// `type` is scanned first (`frame_type`); the other fields are skipped.
#[derive(Deserialize)]
pub(crate) struct FrameLite<'a> {
    #[serde(borrow, default)]
    pub(crate) req: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    pub(crate) version: Option<i64>,
    #[serde(borrow, default)]
    pub(crate) code: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) change: Option<ChangeLite<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChangeLite<'a> {
    op: audotics_protocol::OpKind,
    #[serde(borrow, default)]
    entry_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    to_index: Option<usize>,
}

/// A client op, encoded without building a `serde_json::Value` first.
#[derive(Serialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
enum OpOut<'a> {
    Add {
        req: &'a str,
        track_id: &'a str,
    },
    Reorder {
        req: &'a str,
        entry_id: &'a str,
        to_index: usize,
    },
    Remove {
        req: &'a str,
        entry_id: &'a str,
    },
}

/// A floor frame shaped and sized like the hub's `update` for an add.
fn floor_frame(v: i64, w: usize, sent: u64) -> String {
    format!(
        r#"{{"type":"update","version":{v},"w":{w},"change":{{"op":"add","entryId":"6f1c2a4e-8d3b-4c1a-9e7f-{sent:012}","track":{{"id":"cm3load0000000000track0001","spotifyId":"load-track-0001","name":"Load Track 0001","artists":["Load Artist"],"album":"Load Album","popularity":50}},"index":3,"fromIndex":null,"toIndex":null,"by":"cm3load00000000000user0001"}},"at":"2025-01-01T00:00:00.000Z"}}"#,
        sent = sent % 1_000_000_000_000
    )
}

async fn writer(
    sh: Arc<Shared>,
    slot: Slot,
    permit: tokio::sync::OwnedSemaphorePermit,
    ready: tokio::sync::mpsc::UnboundedSender<()>,
) {
    let (j, w, gi) = (slot.j, slot.w, slot.g);
    let server = &sh.per_server[slot.server];
    let plan = sh.setup.plan.clone();
    let host = sh.setup.sessions[j].host_token.clone();
    let (mut ws, answer) = match connect_join(&sh, slot, &host, None).await {
        Ok(x) => x,
        Err(e) => {
            sh.c.join_failures.fetch_add(1, Relaxed);
            server.failures.fetch_add(1, Relaxed);
            sh.err(format!("writer {e}"));
            let _ = ready.send(());
            return;
        }
    };
    drop(permit);
    sh.c.writers_joined.fetch_add(1, Relaxed);
    server.writers.fetch_add(1, Relaxed);
    let _ = ready.send(());
    let floor = sh.setup.floor;
    let mut q = LocalQueue {
        entries: Vec::new(),
    };
    if !floor {
        if let Ok(ServerMsg::Snapshot(s)) = serde_json::from_str::<ServerMsg>(&answer) {
            q.entries = s.queue.into_iter().map(|e| e.entry_id).collect();
        }
    }
    let per_writer = plan.rate / (plan.sessions * plan.writers).max(1) as f64;
    let mut rng = rand::rngs::StdRng::seed_from_u64(gi as u64);
    let mut sent: HashMap<String, u64> = HashMap::new();
    let mut floor_sent: VecDeque<u64> = VecDeque::new();
    let mut seq: u64 = 0;
    let mut acks = Samples::new();
    // Ticks start at GO; until then the writer keeps reading (answering the
    // hub's pings), spread over the first period.
    let period = if per_writer > 0.0 {
        Duration::from_secs_f64(1.0 / per_writer)
    } else {
        Duration::from_secs(3600)
    };
    let offset = period.mul_f64(rng.gen::<f64>());
    let mut tick: Option<tokio::time::Interval> = None;
    let stream_id = j * plan.writers.max(1) + w;
    let tracks = &sh.setup.tracks;
    loop {
        let sending = !sh.stop.is_cancelled() && per_writer > 0.0 && tick.is_some();
        tokio::select! {
            _ = sh.go.cancelled(), if tick.is_none() => {
                let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                tick = Some(t);
            }
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let now = now_ns();
                    let text = t.as_str();
                    if floor {
                        if frame_type(text) == "ack" {
                            if let Some(s) = floor_sent.pop_front() {
                                acks.push(&sh.ack, (now - s) / 1000);
                                sh.c.acked.fetch_add(1, Relaxed);
                                if sh.in_window(now) { sh.c.acked_in_window.fetch_add(1, Relaxed); }
                            }
                        }
                        continue;
                    }
                    let kind = frame_type(text);
                    if !matches!(kind, "update" | "ack" | "error") {
                        continue;
                    }
                    let Ok(f) = serde_json::from_str::<FrameLite>(text) else {
                        sh.err("undecodable frame");
                        continue;
                    };
                    match (kind, f.change, f.req, f.version) {
                        ("update", Some(change), _, _) => q.apply(&change),
                        ("ack", _, Some(req), Some(version)) => {
                            if let Some(s) = sent.remove(req.as_ref()) {
                                sh.ring.store(j, version, s);
                                acks.push(&sh.ack, (now - s) / 1000);
                                sh.c.acked.fetch_add(1, Relaxed);
                                if sh.in_window(now) { sh.c.acked_in_window.fetch_add(1, Relaxed); }
                            }
                        }
                        ("error", _, req, _) => {
                            if let Some(r) = req { sent.remove(r.as_ref()); }
                            sh.err(format!("op error {}", f.code.as_deref().unwrap_or("?")));
                        }
                        _ => sh.err("undecodable frame"),
                    }
                }
                Some(Ok(Message::Close(f))) => {
                    sh.close(format!("writer {}", f.map(|f| u16::from(f.code)).unwrap_or(1005)));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => { sh.close("writer dropped".into()); break; }
            },
            _ = async { tick.as_mut().expect("sending").tick().await }, if sending => {
                let inflight = if floor { floor_sent.len() } else { sent.len() };
                if inflight >= plan.window {
                    sh.c.throttled.fetch_add(1, Relaxed);
                    continue;
                }
                seq += 1;
                let now = now_ns();
                let text = if floor {
                    sh.ring.store(stream_id, seq as i64, now);
                    floor_sent.push_back(now);
                    floor_frame(seq as i64, w, now)
                } else {
                    let req = format!("{}-{gi}-{seq}", sh.setup.nonce);
                    let f = hub_op(&mut rng, &q, tracks, &req);
                    sent.insert(req, now);
                    f
                };
                if ws.send(Message::text(text)).await.is_err() {
                    sh.close("writer dropped".into());
                    break;
                }
                sh.c.sent.fetch_add(1, Relaxed);
            }
            _ = sh.end.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                break;
            }
        }
    }
    let unanswered = (sent.len() + floor_sent.len()) as u64;
    if unanswered > 0 {
        *sh.errors
            .lock()
            .unwrap()
            .entry("unanswered at end".into())
            .or_default() += unanswered;
    }
    acks.flush(&sh.ack);
}

/// Pick the next op: keep the queue between 10 and 60 entries, otherwise an
/// even mix of add, reorder and remove.
pub(crate) fn hub_op(rng: &mut impl Rng, q: &LocalQueue, tracks: &[String], req: &str) -> String {
    let n = q.entries.len();
    let kind = if n < 10 {
        0
    } else if n > 60 {
        2
    } else {
        rng.gen_range(0..3)
    };
    let op = match kind {
        0 => OpOut::Add {
            req,
            track_id: &tracks[rng.gen_range(0..tracks.len())],
        },
        1 => OpOut::Reorder {
            req,
            entry_id: &q.entries[rng.gen_range(0..n)],
            to_index: rng.gen_range(0..n),
        },
        _ => OpOut::Remove {
            req,
            entry_id: &q.entries[rng.gen_range(0..n)],
        },
    };
    serde_json::to_string(&op).expect("an op encodes")
}

#[cfg(test)]
mod tests {
    use audotics_protocol::model::Track;
    use audotics_protocol::ErrorCode;
    use audotics_protocol::{parse_client, Change, ClientMsg, OpKind, ServerMsg};
    use rand::SeedableRng;

    use super::*;

    fn decode(text: &str) -> (&str, FrameLite<'_>) {
        (frame_type(text), serde_json::from_str(text).unwrap())
    }

    fn encode(msg: &ServerMsg) -> String {
        serde_json::to_string(msg).unwrap()
    }

    fn plan(listeners: Vec<usize>, writers: usize) -> Plan {
        Plan {
            sessions: listeners.len(),
            listeners,
            writers,
            rate: 1.0,
            window: 1,
            duration_s: 1.0,
            drain_s: 0.0,
            churn_rate: 0.0,
            source_ips: 1,
            connect_concurrency: 1,
            connect_rate: 0.0,
        }
    }

    /// Every slot of every worker, in worker order.
    fn all(p: &Plan, spread: Spread, servers: usize, of: usize) -> (Vec<Slot>, Vec<Slot>) {
        let (mut ls, mut ws) = (Vec::new(), Vec::new());
        for i in 0..of {
            let (l, w) = share(p, spread, servers, i, of);
            ls.extend(l);
            ws.extend(w);
        }
        (ls, ws)
    }

    #[test]
    fn hub_urls_take_connections_round_robin() {
        // 2 sessions of 7 listeners and 2 writers each, 3 hubs, 2 workers.
        let p = plan(vec![7, 7], 2);
        let (ls, ws) = all(&p, Spread::ByConnection, 3, 2);
        assert_eq!((ls.len(), ws.len()), (14, 4));
        // Each listener and writer exactly once; connection g (listeners
        // 0..14, then writer j × writers + w as 14 + that) on hub g % 3.
        let mut gs: Vec<usize> = ls.iter().chain(&ws).map(|s| s.g).collect();
        gs.sort();
        assert_eq!(gs, (0..18).collect::<Vec<_>>());
        for s in ls.iter().chain(&ws) {
            assert_eq!(s.server, s.g % 3);
        }
        assert!(ls.iter().all(|s| s.j == s.g / 7));
        let writer_hubs: Vec<(usize, usize, usize)> = {
            let mut v: Vec<_> = ws.iter().map(|s| (s.j, s.w, s.server)).collect();
            v.sort();
            v
        };
        assert_eq!(
            writer_hubs,
            vec![(0, 0, 2), (0, 1, 0), (1, 0, 1), (1, 1, 2)]
        );
        // Every session's listeners reach every hub, and the hubs' loads
        // differ by at most one.
        for j in 0..2 {
            let mut per = [0; 3];
            for s in ls.iter().filter(|s| s.j == j) {
                per[s.server] += 1;
            }
            assert!(per.iter().all(|&n| n >= 2), "session {j}: {per:?}");
        }
        let mut per = [0; 3];
        for s in ls.iter().chain(&ws) {
            per[s.server] += 1;
        }
        assert_eq!(per, [6, 6, 6]);
        // The worker split is the same as with one hub.
        let (one_l, one_w) = all(&p, Spread::ByConnection, 1, 2);
        let strip = |v: &[Slot]| v.iter().map(|s| (s.j, s.w, s.g)).collect::<Vec<_>>();
        assert_eq!(strip(&one_l), strip(&ls));
        assert_eq!(strip(&one_w), strip(&ws));
    }

    #[test]
    fn writers_can_have_their_own_servers() {
        // 2 sessions × 3 listeners on servers 0, 1, 2; 2 writers each on 1, 2.
        let p = plan(vec![3, 3], 2);
        let (mut ls, mut ws) = (Vec::new(), Vec::new());
        for i in 0..2 {
            let (l, w) = share_pools(&p, Spread::ByConnection, &[0, 1, 2], &[1, 2], i, 2);
            ls.extend(l);
            ws.extend(w);
        }
        assert_eq!((ls.len(), ws.len()), (6, 4));
        assert!(ls.iter().all(|s| s.server == s.g % 3));
        assert!(ws.iter().all(|s| s.server == [1, 2][s.g % 2]));
        assert!(ws.iter().any(|s| s.server == 1) && ws.iter().any(|s| s.server == 2));
    }

    #[test]
    fn one_url_or_floors_keep_their_assignment() {
        let p = plan(vec![3, 2, 4], 1);
        // One hub: everything on it.
        let (ls, ws) = all(&p, Spread::ByConnection, 1, 3);
        assert!(ls.iter().chain(&ws).all(|s| s.server == 0));
        // Floors: session j on floor j % n, listeners and writers alike.
        let (ls, ws) = all(&p, Spread::BySession, 2, 3);
        assert!(ls.iter().chain(&ws).all(|s| s.server == s.j % 2));
        // Worker i holds listener k when k % procs == i, writer (j, w)
        // when (j + w) % procs == i.
        for i in 0..3 {
            let (l, w) = share(&p, Spread::BySession, 2, i, 3);
            assert!(l.iter().all(|s| s.g % 3 == i));
            assert!(w.iter().all(|s| (s.j + s.w) % 3 == i));
            assert!(w.iter().all(|s| s.g == 9 + s.j));
        }
    }

    #[test]
    fn the_lite_decoder_reads_what_the_hub_sends() {
        let change = Change {
            op: OpKind::Add,
            entry_id: Some("e-\"1\"".into()),
            track: Some(Track {
                id: "t1".into(),
                spotify_id: "sp1".into(),
                name: "N".into(),
                artists: vec!["A".into()],
                album: "B".into(),
                popularity: 5,
                duration_ms: None,
                cover_url: None,
            }),
            index: Some(3),
            from_index: None,
            to_index: None,
            by: Some("u1".into()),
            detail: None,
        };
        let at = serde_json::from_str("\"2026-11-27T07:00:00.000Z\"").unwrap();
        let text = encode(&ServerMsg::Update {
            version: 7,
            change,
            at,
        });
        let (kind, f) = decode(&text);
        assert_eq!(kind, "update");
        let c = f.change.unwrap();
        assert_eq!(
            (c.op, c.entry_id.as_deref(), c.index),
            (OpKind::Add, Some("e-\"1\""), Some(3))
        );

        let text = encode(&ServerMsg::Ack {
            req: "r-1".into(),
            version: 9,
        });
        let (kind, f) = decode(&text);
        assert_eq!(
            (kind, f.req.as_deref(), f.version),
            ("ack", Some("r-1"), Some(9))
        );

        let text = encode(&ServerMsg::Error {
            req: Some("r-2".into()),
            code: ErrorCode::NotFound,
            message: "entryId: gone".into(),
        });
        let (kind, f) = decode(&text);
        assert_eq!((kind, f.req.as_deref()), ("error", Some("r-2")));
        assert_eq!(f.code.as_deref(), Some("not_found"));
    }

    #[test]
    fn the_ops_a_writer_sends_are_what_the_hub_parses() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let tracks = vec!["t1".to_owned()];
        let mut q = LocalQueue {
            entries: Vec::new(),
        };
        // Empty queue: an add.
        match parse_client(&hub_op(&mut rng, &q, &tracks, "r1")) {
            Ok(ClientMsg::Add(a)) => {
                assert_eq!((a.req.as_str(), a.track_id.as_deref()), ("r1", Some("t1")))
            }
            other => panic!("{other:?}"),
        }
        // A long queue: removes and reorders of entries it holds.
        q.entries = (0..30).map(|i| format!("e{i}")).collect();
        let mut seen = (false, false);
        for i in 0..50 {
            match parse_client(&hub_op(&mut rng, &q, &tracks, &format!("r{i}"))) {
                Ok(ClientMsg::Remove(r)) => {
                    assert!(q.entries.contains(&r.entry_id));
                    seen.0 = true;
                }
                Ok(ClientMsg::Reorder(r)) => {
                    assert!(q.entries.contains(&r.entry_id) && r.to_index < 30);
                    seen.1 = true;
                }
                Ok(ClientMsg::Add(_)) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(seen, (true, true));
    }
}
