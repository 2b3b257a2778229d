//! `audotics-load failover`: a cluster loses a node (kill -9) under
//! writes. Every session has one writer that keeps one op in flight and
//! listeners that check version order; at a set time the parent kills a
//! node by pid. A writer whose connection dies reconnects to the next URL
//! and sends its unanswered op again with the same `req`; an op answered
//! `unavailable` is sent again (same `req`) after a short pause. Listeners
//! whose node dies rejoin on the next URL with `since`. At the end the
//! parent checks Postgres: every acked `req` is stored exactly once at its
//! acked version, and every session's versions are contiguous.
//!
//! Measured: for each acked op, the time from its first send to its ack;
//! reported for all ops, for those in flight at the kill or first sent in
//! the seconds after it, and for those before it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use audotics_protocol::ServerMsg;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::common::*;
use crate::engine::{hub_op, join_at, share, FrameLite, LocalQueue, Plan, SessionSetup, Spread};

/// What the parent prepared and every worker reads.
#[derive(Clone, Serialize, Deserialize)]
pub struct FoSetup {
    pub nonce: String,
    pub dsts: Vec<SocketAddr>,
    pub sessions: Vec<SessionSetup>,
    pub tokens: Vec<String>,
    pub tracks: Vec<String>,
    pub plan: Plan,
    /// Pause before sending an op again after `unavailable`.
    pub retry_pause_ms: u64,
    /// An op with no answer for this long is sent again (same `req`).
    pub op_timeout_ms: u64,
}

/// The flags of the scenario, as the parent reads them.
pub struct FoArgs {
    pub database_url: Option<String>,
    pub kill_pid: Option<u32>,
    pub kill_url: Option<String>,
    pub kill_after: f64,
    pub after_kill_window: f64,
    pub retry_pause_ms: u64,
    pub op_timeout_ms: u64,
}

/// One acked op: session, writer's connection number, its sequence
/// number (req = nonce-g-seq), first send, ack (CLOCK_MONOTONIC ns), acked
/// version, times sent, and whether its writer changed node meanwhile.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OpRecord(
    pub usize,
    pub usize,
    pub u64,
    pub u64,
    pub u64,
    pub i64,
    pub u32,
    pub bool,
);

/// What one worker measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FoResult {
    pub listeners_joined: u64,
    pub writers_joined: u64,
    pub join_failures: u64,
    pub connect_start_ns: u64,
    pub connect_end_ns: u64,
    pub window_start_ns: u64,
    pub window_end_ns: u64,
    pub deliveries: u64,
    pub gaps: u64,
    pub missing_versions: u64,
    pub out_of_order: u64,
    pub listener_rejoins: u64,
    pub resumed: u64,
    pub snapshots_on_rejoin: u64,
    pub writer_reconnects: u64,
    pub ops_first_sent: u64,
    pub resends: u64,
    pub unavailable: u64,
    pub op_timeouts: u64,
    pub throttled_ticks: u64,
    pub stale_acks: u64,
    pub unanswered_at_end: u64,
    /// Ops never acked (refused or unanswered): (session, g, seq).
    pub unacked: Vec<(usize, usize, u64)>,
    pub refused: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    pub closes: BTreeMap<String, u64>,
    pub hist_join: String,
    pub ops: Vec<OpRecord>,
    /// Each listener's session and last version at the end.
    pub finals: Vec<(usize, i64)>,
    pub worker_rss_kib: u64,
}

#[derive(Default)]
struct Counters {
    listeners_joined: AtomicU64,
    writers_joined: AtomicU64,
    join_failures: AtomicU64,
    deliveries: AtomicU64,
    gaps: AtomicU64,
    missing: AtomicU64,
    out_of_order: AtomicU64,
    rejoins: AtomicU64,
    resumed: AtomicU64,
    snapshots_on_rejoin: AtomicU64,
    writer_reconnects: AtomicU64,
    first_sent: AtomicU64,
    resends: AtomicU64,
    unavailable: AtomicU64,
    op_timeouts: AtomicU64,
    throttled: AtomicU64,
    stale_acks: AtomicU64,
    unanswered: AtomicU64,
}

struct Shared {
    setup: FoSetup,
    c: Counters,
    unacked: Mutex<Vec<(usize, usize, u64)>>,
    refused: Mutex<BTreeMap<String, u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
    closes: Mutex<BTreeMap<String, u64>>,
    ops: Mutex<Vec<OpRecord>>,
    finals: Mutex<Vec<(usize, i64)>>,
    join: Mutex<Histogram<u64>>,
    go: CancellationToken,
    stop: CancellationToken,
    end: CancellationToken,
}

fn bump(m: &Mutex<BTreeMap<String, u64>>, k: impl Into<String>) {
    *m.lock().unwrap().entry(k.into()).or_default() += 1;
}

/// Connect to `dst` and join `session_id`; the socket and the first
/// answer (`snapshot` or `resumed`).
pub async fn join_on(
    dst: SocketAddr,
    session_id: &str,
    token: &str,
    since: Option<i64>,
    src: Option<Ipv4Addr>,
) -> Result<(Ws, String), String> {
    join_at(dst, "/v1/ws", session_id, token, since, src).await
}

/// Join every session once through `owner` and leave again, so that in a
/// cluster that node takes every session's lease (the first request for a
/// session that finds no owner makes its node the owner).
pub async fn prime_owner(owner: SocketAddr, sessions: &[SessionSetup]) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let sem = Arc::new(Semaphore::new(32));
    let mut hs = Vec::new();
    for s in sessions {
        let (sem, s) = (sem.clone(), s.clone());
        hs.push(tokio::spawn(async move {
            let _p = sem.acquire().await;
            let (mut ws, _) = join_on(owner, &s.id, &s.host_token, None, None).await?;
            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
            Ok::<(), String>(())
        }));
    }
    let mut failed = 0;
    for h in hs {
        if let Err(e) = h.await? {
            failed += 1;
            eprintln!("prime: {e}");
        }
    }
    if failed > 0 {
        bail!("priming {owner} as owner: {failed} joins failed");
    }
    eprintln!(
        "primed {owner} as the owner of {} sessions in {:.1?}",
        sessions.len(),
        t0.elapsed()
    );
    Ok(())
}

fn snapshot_queue(answer: &str) -> Option<Vec<String>> {
    match serde_json::from_str::<ServerMsg>(answer) {
        Ok(ServerMsg::Snapshot(s)) => Some(s.queue.into_iter().map(|e| e.entry_id).collect()),
        _ => None,
    }
}

pub async fn run_worker(setup: FoSetup, index: usize, of: usize) -> anyhow::Result<()> {
    let plan = setup.plan.clone();
    let (my_listeners, my_writers) =
        share(&plan, Spread::ByConnection, setup.dsts.len(), index, of);
    let mine = my_listeners.len() + my_writers.len();
    let limit = raise_nofile();
    if mine as u64 + 64 > limit {
        bail!("worker {index} would hold {mine} connections, above the open-files limit {limit}: raise --procs");
    }
    let sh = Arc::new(Shared {
        setup,
        c: Counters::default(),
        unacked: Mutex::default(),
        refused: Mutex::default(),
        errors: Mutex::default(),
        closes: Mutex::default(),
        ops: Mutex::default(),
        finals: Mutex::default(),
        join: Mutex::new(new_hist()),
        go: CancellationToken::new(),
        stop: CancellationToken::new(),
        end: CancellationToken::new(),
    });
    let connect_start = now_ns();
    let sem = Arc::new(Semaphore::new(plan.connect_concurrency.max(1)));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut tasks = Vec::new();
    for &slot in &my_writers {
        let permit = sem.clone().acquire_owned().await?;
        let (sh, ready) = (sh.clone(), ready_tx.clone());
        tasks.push(tokio::spawn(async move {
            writer(sh, slot.j, slot.g, slot.server, permit, ready).await
        }));
    }
    for &slot in &my_listeners {
        let permit = sem.clone().acquire_owned().await?;
        let (sh, ready) = (sh.clone(), ready_tx.clone());
        tasks.push(tokio::spawn(async move {
            listener(sh, slot.j, slot.g, slot.server, permit, ready).await
        }));
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
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        match stdin.next_line().await? {
            Some(l) if l.trim() == "GO" => break,
            Some(_) => continue,
            None => bail!("parent went away before GO"),
        }
    }
    let window_start = now_ns();
    sh.go.cancel();
    tokio::time::sleep(Duration::from_secs_f64(plan.duration_s)).await;
    let window_end = now_ns();
    sh.stop.cancel();
    tokio::time::sleep(Duration::from_secs_f64(plan.drain_s)).await;
    sh.end.cancel();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    let c = &sh.c;
    let result = FoResult {
        listeners_joined: c.listeners_joined.load(Relaxed),
        writers_joined: c.writers_joined.load(Relaxed),
        join_failures: c.join_failures.load(Relaxed),
        connect_start_ns: connect_start,
        connect_end_ns: connect_end,
        window_start_ns: window_start,
        window_end_ns: window_end,
        deliveries: c.deliveries.load(Relaxed),
        gaps: c.gaps.load(Relaxed),
        missing_versions: c.missing.load(Relaxed),
        out_of_order: c.out_of_order.load(Relaxed),
        listener_rejoins: c.rejoins.load(Relaxed),
        resumed: c.resumed.load(Relaxed),
        snapshots_on_rejoin: c.snapshots_on_rejoin.load(Relaxed),
        writer_reconnects: c.writer_reconnects.load(Relaxed),
        ops_first_sent: c.first_sent.load(Relaxed),
        resends: c.resends.load(Relaxed),
        unavailable: c.unavailable.load(Relaxed),
        op_timeouts: c.op_timeouts.load(Relaxed),
        throttled_ticks: c.throttled.load(Relaxed),
        stale_acks: c.stale_acks.load(Relaxed),
        unanswered_at_end: c.unanswered.load(Relaxed),
        unacked: std::mem::take(&mut *sh.unacked.lock().unwrap()),
        refused: sh.refused.lock().unwrap().clone(),
        errors: sh.errors.lock().unwrap().clone(),
        closes: sh.closes.lock().unwrap().clone(),
        hist_join: hist_to_b64(&sh.join.lock().unwrap()),
        ops: std::mem::take(&mut *sh.ops.lock().unwrap()),
        finals: std::mem::take(&mut *sh.finals.lock().unwrap()),
        worker_rss_kib: rss_kib("self").unwrap_or(0),
    };
    println!("RESULT {}", serde_json::to_string(&result)?);
    Ok(())
}

async fn listener(
    sh: Arc<Shared>,
    j: usize,
    g: usize,
    first_server: usize,
    permit: tokio::sync::OwnedSemaphorePermit,
    ready: tokio::sync::mpsc::UnboundedSender<()>,
) {
    let n = sh.setup.dsts.len();
    let mut server = first_server;
    let token = sh.setup.tokens[g % sh.setup.tokens.len().max(1)].clone();
    let session = sh.setup.sessions[j].id.clone();
    let src = source_ip(g, sh.setup.plan.source_ips);
    let mut permit = Some(permit);
    let mut first = true;
    let mut last: i64 = 0;
    let mut deliveries = 0u64;
    'conn: loop {
        if sh.end.is_cancelled() {
            break;
        }
        let t0 = now_ns();
        let since = if first { None } else { Some(last) };
        let (mut ws, answer) =
            match join_on(sh.setup.dsts[server], &session, &token, since, src).await {
                Ok(x) => x,
                Err(e) => {
                    if first {
                        sh.c.join_failures.fetch_add(1, Relaxed);
                        bump(&sh.errors, e);
                        let _ = ready.send(());
                        return;
                    }
                    bump(&sh.errors, format!("listener rejoin {e}"));
                    server = (server + 1) % n;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
        let v = int_field(&answer, "\"version").unwrap_or(0);
        match frame_type(&answer) {
            "resumed" if !first => {
                sh.c.resumed.fetch_add(1, Relaxed);
            }
            _ if !first => {
                sh.c.snapshots_on_rejoin.fetch_add(1, Relaxed);
                last = v;
            }
            _ => last = v,
        }
        if first {
            sh.join
                .lock()
                .unwrap()
                .saturating_record(((now_ns() - t0) / 1000).max(1));
            sh.c.listeners_joined.fetch_add(1, Relaxed);
            let _ = ready.send(());
            drop(permit.take());
            first = false;
        } else {
            sh.c.rejoins.fetch_add(1, Relaxed);
        }
        let mut ended = std::pin::pin!(sh.end.cancelled());
        loop {
            tokio::select! {
                m = ws.next() => match m {
                    Some(Ok(Message::Text(t))) => {
                        let text = t.as_str();
                        if frame_type(text) != "update" {
                            continue;
                        }
                        let Some(v) = int_field(text, "\"version") else {
                            bump(&sh.errors, "unparsable update");
                            continue;
                        };
                        deliveries += 1;
                        if v == last + 1 {
                            last = v;
                        } else if v <= last {
                            sh.c.out_of_order.fetch_add(1, Relaxed);
                        } else {
                            sh.c.gaps.fetch_add(1, Relaxed);
                            sh.c.missing.fetch_add((v - last - 1) as u64, Relaxed);
                            last = v;
                        }
                    }
                    Some(Ok(Message::Close(f))) => {
                        bump(&sh.closes, f.map(|f| u16::from(f.code).to_string()).unwrap_or("1005".into()));
                        server = (server + 1) % n;
                        continue 'conn;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        bump(&sh.closes, "dropped");
                        server = (server + 1) % n;
                        continue 'conn;
                    }
                },
                _ = &mut ended => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                    break 'conn;
                }
            }
        }
    }
    drop(permit);
    sh.c.deliveries.fetch_add(deliveries, Relaxed);
    if !first {
        sh.finals.lock().unwrap().push((j, last));
    }
}

struct Pending {
    seq: u64,
    req: String,
    text: String,
    first_ns: u64,
    sends: u32,
    moved: bool,
    /// When to send it again: after `unavailable` (a short pause) or when
    /// unanswered for the op timeout.
    again_at: tokio::time::Instant,
    /// Whether `again_at` is a pause after `unavailable` (else a timeout).
    paused: bool,
}

async fn writer(
    sh: Arc<Shared>,
    j: usize,
    g: usize,
    first_server: usize,
    permit: tokio::sync::OwnedSemaphorePermit,
    ready: tokio::sync::mpsc::UnboundedSender<()>,
) {
    let n = sh.setup.dsts.len();
    let plan = sh.setup.plan.clone();
    let mut server = first_server;
    let host = sh.setup.sessions[j].host_token.clone();
    let session = sh.setup.sessions[j].id.clone();
    let src = source_ip(g, plan.source_ips);
    let timeout = Duration::from_millis(sh.setup.op_timeout_ms.max(1));
    let pause = Duration::from_millis(sh.setup.retry_pause_ms);
    let mut q = LocalQueue {
        entries: Vec::new(),
    };
    let mut conn = match join_on(sh.setup.dsts[server], &session, &host, None, src).await {
        Ok((ws, answer)) => {
            q.entries = snapshot_queue(&answer).unwrap_or_default();
            Some(ws)
        }
        Err(e) => {
            sh.c.join_failures.fetch_add(1, Relaxed);
            bump(&sh.errors, format!("writer {e}"));
            let _ = ready.send(());
            return;
        }
    };
    drop(permit);
    sh.c.writers_joined.fetch_add(1, Relaxed);
    let _ = ready.send(());
    let per_writer = plan.rate / plan.sessions.max(1) as f64;
    let period = if per_writer > 0.0 {
        Duration::from_secs_f64(1.0 / per_writer)
    } else {
        Duration::from_secs(3600)
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(g as u64);
    let offset = period.mul_f64(rng.gen::<f64>());
    let mut tick: Option<tokio::time::Interval> = None;
    let mut seq = 0u64;
    let mut pending: Option<Pending> = None;
    let far = || tokio::time::Instant::now() + Duration::from_secs(86_400);
    loop {
        if sh.end.is_cancelled() {
            break;
        }
        if conn.is_none() {
            server = (server + 1) % n;
            match join_on(sh.setup.dsts[server], &session, &host, None, src).await {
                Ok((mut ws, answer)) => {
                    sh.c.writer_reconnects.fetch_add(1, Relaxed);
                    q.entries = snapshot_queue(&answer).unwrap_or_default();
                    if let Some(p) = pending.as_mut() {
                        sh.c.resends.fetch_add(1, Relaxed);
                        p.sends += 1;
                        p.moved = true;
                        p.paused = false;
                        p.again_at = tokio::time::Instant::now() + timeout;
                        if ws.send(Message::text(p.text.clone())).await.is_err() {
                            bump(&sh.closes, "writer dropped");
                            continue;
                        }
                    }
                    conn = Some(ws);
                }
                Err(e) => {
                    bump(&sh.errors, format!("writer rejoin {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let ws = conn.as_mut().expect("connected above");
        let sending = tick.is_some() && !sh.stop.is_cancelled();
        let again_at = pending.as_ref().map_or_else(far, |p| p.again_at);
        let mut lost = false;
        tokio::select! {
            _ = sh.go.cancelled(), if tick.is_none() => {
                let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick = Some(t);
            }
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let now = now_ns();
                    let text = t.as_str();
                    let kind = frame_type(text);
                    if !matches!(kind, "update" | "ack" | "error") {
                        continue;
                    }
                    let Ok(f) = serde_json::from_str::<FrameLite>(text) else {
                        bump(&sh.errors, "undecodable frame");
                        continue;
                    };
                    let mine = |r: &Option<std::borrow::Cow<str>>| {
                        matches!((r, &pending), (Some(r), Some(p)) if r.as_ref() == p.req)
                    };
                    match kind {
                        "update" => {
                            if let Some(c) = &f.change {
                                q.apply(c);
                            }
                        }
                        "ack" if mine(&f.req) => {
                            let p = pending.take().expect("matched");
                            sh.ops.lock().unwrap().push(OpRecord(
                                j, g, p.seq, p.first_ns, now, f.version.unwrap_or(-1), p.sends, p.moved,
                            ));
                        }
                        "ack" => {
                            sh.c.stale_acks.fetch_add(1, Relaxed);
                        }
                        "error" if mine(&f.req) => {
                            let code = f.code.as_deref().unwrap_or("?").to_owned();
                            if code == "unavailable" {
                                sh.c.unavailable.fetch_add(1, Relaxed);
                                let p = pending.as_mut().expect("matched");
                                p.paused = true;
                                p.again_at = tokio::time::Instant::now() + pause;
                            } else {
                                let p = pending.take().expect("matched");
                                sh.unacked.lock().unwrap().push((j, g, p.seq));
                                bump(&sh.refused, code);
                            }
                        }
                        _ => bump(&sh.errors, format!("error {} for no pending op", f.code.as_deref().unwrap_or("?"))),
                    }
                }
                Some(Ok(Message::Close(f))) => {
                    bump(&sh.closes, format!("writer {}", f.map(|f| u16::from(f.code)).unwrap_or(1005)));
                    lost = true;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    bump(&sh.closes, "writer dropped");
                    lost = true;
                }
            },
            _ = tokio::time::sleep_until(again_at), if pending.is_some() => {
                let p = pending.as_mut().expect("guarded");
                if !p.paused {
                    sh.c.op_timeouts.fetch_add(1, Relaxed);
                }
                p.paused = false;
                p.sends += 1;
                p.again_at = tokio::time::Instant::now() + timeout;
                sh.c.resends.fetch_add(1, Relaxed);
                if ws.send(Message::text(p.text.clone())).await.is_err() {
                    bump(&sh.closes, "writer dropped");
                    lost = true;
                }
            }
            _ = async { tick.as_mut().expect("sending").tick().await }, if sending => {
                if pending.is_some() {
                    sh.c.throttled.fetch_add(1, Relaxed);
                    continue;
                }
                seq += 1;
                let req = format!("{}-{g}-{seq}", sh.setup.nonce);
                let text = hub_op(&mut rng, &q, &sh.setup.tracks, &req);
                let now = now_ns();
                sh.c.first_sent.fetch_add(1, Relaxed);
                pending = Some(Pending {
                    seq,
                    req,
                    text: text.clone(),
                    first_ns: now,
                    sends: 1,
                    moved: false,
                    again_at: tokio::time::Instant::now() + timeout,
                    paused: false,
                });
                if ws.send(Message::text(text)).await.is_err() {
                    bump(&sh.closes, "writer dropped");
                    lost = true;
                }
            }
            _ = sh.end.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                break;
            }
        }
        if lost {
            conn = None;
            if sh.end.is_cancelled() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    if let Some(p) = pending {
        sh.c.unanswered.fetch_add(1, Relaxed);
        sh.unacked.lock().unwrap().push((j, g, p.seq));
    }
}

// ---------------------------------------------------------------------------
// The parent.

/// The cluster metrics of one node, from its /metrics (name suffix →
/// value; labels ignored, values of one name added up).
async fn scrape(addr: SocketAddr) -> Option<BTreeMap<String, f64>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let text = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let wanted = [
        "cluster_sessions_owned",
        "cluster_takeovers_total",
        "cluster_deposed_total",
        "cluster_ops_forwarded_total",
        "cluster_ops_received_total",
        "cluster_events_published_total",
        "cluster_events_received_total",
        "cluster_gaps_filled_total",
        "cluster_messages_dropped_total",
        "cluster_nats_disconnects_total",
        "hub_live_sessions",
        "hub_listeners",
    ];
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut it = line.split_whitespace();
        let (Some(name), Some(value)) = (it.next(), it.next()) else {
            continue;
        };
        let base = name.split('{').next().unwrap_or(name);
        if let Some(w) = wanted.iter().find(|w| base.ends_with(*w)) {
            if let Ok(v) = value.parse::<f64>() {
                *out.entry((*w).to_owned()).or_default() += v;
            }
        }
    }
    Some(out)
}

/// CPU ticks (utime + stime) of every process, added up by command name
/// (so all Postgres backends count as one `postgres`).
fn cpu_by_comm() -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(a), Some(b)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[a + 1..b].to_owned();
        if let Some(t) = cpu_ticks(pid) {
            *out.entry(comm).or_default() += t;
        }
    }
    out
}

/// After the kill: every 500 ms for `secs` s, the surviving nodes'
/// takeovers and the machine's CPU by process name (the busiest 6).
async fn watch_recovery(nodes: Vec<SocketAddr>, secs: f64) -> Value {
    let t0 = Instant::now();
    let mut prev = cpu_by_comm();
    let mut prev_m = machine_ticks();
    let mut prev_t = Instant::now();
    let mut samples = Vec::new();
    let steps = (secs * 2.0).ceil() as u32;
    for i in 1..=steps {
        tokio::time::sleep_until(tokio::time::Instant::from_std(
            t0 + Duration::from_millis(500 * u64::from(i)),
        ))
        .await;
        let mut takeovers = Vec::new();
        for n in &nodes {
            takeovers.push(
                scrape(*n)
                    .await
                    .and_then(|m| m.get("cluster_takeovers_total").copied()),
            );
        }
        let now = cpu_by_comm();
        let m = machine_ticks();
        let dt = prev_t.elapsed().as_secs_f64().max(1e-3);
        prev_t = Instant::now();
        let mut top: Vec<(String, f64)> = now
            .iter()
            .map(|(k, v)| {
                let d = v.saturating_sub(prev.get(k).copied().unwrap_or(*v));
                (k.clone(), d as f64 / 100.0 / dt)
            })
            .filter(|(_, c)| *c > 0.0)
            .collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1));
        top.truncate(6);
        let busy = match (prev_m, m) {
            (Some(a), Some(b)) => Some(
                (b.0 - a.0) as f64 / (b.1 - a.1).max(1) as f64
                    * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
            ),
            _ => None,
        };
        samples.push(json!({
            "t_s": t0.elapsed().as_secs_f64(),
            "takeovers_total": takeovers,
            "machine_busy_cores": busy,
            "cores_by_process": top.into_iter().map(|(k, c)| json!([k, (c * 100.0).round() / 100.0])).collect::<Vec<_>>(),
        }));
        prev = now;
        prev_m = m;
    }
    json!({ "nodes": nodes.iter().map(|n| n.to_string()).collect::<Vec<_>>(), "samples": samples })
}

fn psql(url: &str, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let out = std::process::Command::new("psql")
        .arg(url)
        .args([
            "-X",
            "-q",
            "-At",
            "-F",
            "|",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .context("running psql (the PostgreSQL client)")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect())
}

/// Postgres after the run: every acked req stored exactly once at its
/// acked version; every session's versions 1..=max without a hole or a
/// repeat, and `hub_session.version` = max; listeners' last versions.
fn check_db(
    url: &str,
    nonce: &str,
    sessions: &[SessionSetup],
    ops: &[OpRecord],
    unacked: &[(usize, usize, u64)],
    finals: &[(usize, i64)],
) -> anyhow::Result<Value> {
    let ids: Vec<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
    for id in &ids {
        anyhow::ensure!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "unexpected session id {id}"
        );
    }
    anyhow::ensure!(
        nonce.bytes().all(|b| b.is_ascii_alphanumeric()),
        "unexpected nonce"
    );
    let arr = format!("'{{{}}}'::text[]", ids.join(","));
    let index: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    let rows = psql(
        url,
        &format!(
            r#"SELECT p."sessionId", u."hubReq", u."hubVersion" FROM "PlaylistUpdate" u
               JOIN "Playlist" p ON p."id" = u."playlistId"
               WHERE u."hubReq" LIKE '{nonce}-%'"#
        ),
    )?;
    let mut stored: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for r in rows {
        if r.len() < 3 {
            continue;
        }
        let v = r[2].parse::<i64>().unwrap_or(-1);
        stored
            .entry(r[1].clone())
            .or_default()
            .push((r[0].clone(), v));
    }
    let (mut ok, mut lost, mut wrong, mut dup) = (0u64, 0u64, 0u64, 0u64);
    let mut examples = Vec::new();
    for o in ops {
        let req = format!("{nonce}-{}-{}", o.1, o.2);
        match stored.get(&req).map(Vec::as_slice) {
            None | Some([]) => {
                lost += 1;
                if examples.len() < 5 {
                    examples.push(format!("{req}: acked at {}, not stored", o.5));
                }
            }
            Some([(s, v)]) => {
                if *v == o.5 && index.get(s.as_str()) == Some(&o.0) {
                    ok += 1;
                } else {
                    wrong += 1;
                    if examples.len() < 5 {
                        examples.push(format!("{req}: acked at {}, stored at {v} in {s}", o.5));
                    }
                }
            }
            Some(many) => {
                dup += 1;
                if examples.len() < 5 {
                    examples.push(format!("{req}: stored {} times", many.len()));
                }
            }
        }
    }
    let acked: HashSet<String> = ops
        .iter()
        .map(|o| format!("{nonce}-{}-{}", o.1, o.2))
        .collect();
    let unacked_stored = unacked
        .iter()
        .filter(|(_, g, s)| stored.contains_key(&format!("{nonce}-{g}-{s}")))
        .count();
    let stored_not_acked = stored.keys().filter(|k| !acked.contains(*k)).count();
    let rows = psql(
        url,
        &format!(
            r#"SELECT s, count(*), count(DISTINCT v), coalesce(min(v), 0), coalesce(max(v), 0) FROM (
                 SELECT p."sessionId" AS s, u."hubVersion" AS v FROM "PlaylistUpdate" u
                   JOIN "Playlist" p ON p."id" = u."playlistId"
                   WHERE u."hubVersion" IS NOT NULL AND p."sessionId" = ANY({arr})
                 UNION ALL
                 SELECT session_id, version FROM hub_event WHERE session_id = ANY({arr})
               ) x GROUP BY s"#
        ),
    )?;
    let mut max_of: HashMap<String, i64> = HashMap::new();
    let mut noncontiguous = 0u64;
    for r in &rows {
        let n = |i: usize| r.get(i).and_then(|x| x.parse::<i64>().ok()).unwrap_or(-1);
        let (count, distinct, min, max) = (n(1), n(2), n(3), n(4));
        if count != distinct || min != 1 || max != count {
            noncontiguous += 1;
            if examples.len() < 10 {
                examples.push(format!(
                    "session {}: {count} versions, {distinct} distinct, {min}..={max}",
                    r[0]
                ));
            }
        }
        max_of.insert(r[0].clone(), max);
    }
    let rows = psql(
        url,
        &format!("SELECT session_id, version FROM hub_session WHERE session_id = ANY({arr})"),
    )?;
    let mut counter_mismatch = 0u64;
    let mut version_of: HashMap<String, i64> = HashMap::new();
    for r in &rows {
        let v = r.get(1).and_then(|x| x.parse::<i64>().ok()).unwrap_or(-1);
        if max_of.get(&r[0]).copied().unwrap_or(0) != v {
            counter_mismatch += 1;
        }
        version_of.insert(r[0].clone(), v);
    }
    let behind = finals
        .iter()
        .filter(|(j, last)| version_of.get(&sessions[*j].id).copied().unwrap_or(0) != *last)
        .count();
    Ok(json!({
        "acked_ops_checked": ops.len(),
        "acked_stored_once_at_acked_version": ok,
        "acked_lost": lost,
        "acked_at_other_version": wrong,
        "acked_duplicated": dup,
        "unacked_ops": unacked.len(),
        "unacked_but_stored": unacked_stored,
        "stored_reqs_not_acked": stored_not_acked,
        "sessions_checked": rows.len(),
        "sessions_with_versions": max_of.len(),
        "sessions_noncontiguous": noncontiguous,
        "sessions_counter_mismatch": counter_mismatch,
        "listeners_checked": finals.len(),
        "listeners_not_at_final_version": behind,
        "examples": examples,
    }))
}

fn hist_ms(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return Value::Null;
    }
    let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
    })
}

#[allow(clippy::too_many_arguments)]
pub async fn parent(
    common: &crate::Common,
    plan: Plan,
    fo: FoArgs,
    hubs: Vec<SocketAddr>,
    setup_hub: SocketAddr,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let hard = tokio::time::Instant::from_std(started + Duration::from_secs(common.timeout));
    let procs = common.procs.max(1);
    let per_proc = plan.total_connections().div_ceil(procs);
    if per_proc + 64 > raise_nofile() as usize {
        bail!("{per_proc} connections per worker is above the open-files limit: raise --procs");
    }
    if let Some(pid) = fo.kill_pid {
        anyhow::ensure!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "--kill-pid {pid}: no such process"
        );
        anyhow::ensure!(
            fo.kill_after < plan.duration_s,
            "--kill-after must fall inside --duration"
        );
    }
    let kill_addr = fo.kill_url.as_deref().map(loopback_addr).transpose()?;
    let nonce = format!("{:x}", std::process::id() as u64 ^ now_ns());
    eprintln!(
        "failover: {} sessions, {} listeners, 1 writer/session, {} ops/s, {} procs, {} nodes",
        plan.sessions,
        plan.total_listeners(),
        plan.rate,
        procs,
        hubs.len()
    );
    let (sessions, tokens, tracks) = crate::prepare(setup_hub, common, &plan, &nonce).await?;
    if let Some(owner) = &common.prime_owner {
        prime_owner(loopback_addr(owner)?, &sessions).await?;
    }
    let setup = FoSetup {
        nonce: nonce.clone(),
        dsts: hubs.clone(),
        sessions,
        tokens,
        tracks,
        plan: plan.clone(),
        retry_pause_ms: fo.retry_pause_ms,
        op_timeout_ms: fo.op_timeout_ms,
    };
    let setup_path: PathBuf = std::env::temp_dir().join(format!("audotics-load-{nonce}.json"));
    std::fs::write(&setup_path, serde_json::to_vec(&setup)?)?;
    let (mut children, mut rx) = crate::spawn_workers(&setup_path, procs)?;
    let result = async {
        let mut ready = 0;
        while ready < procs {
            match tokio::time::timeout_at(hard, rx.recv()).await {
                Ok(Some((_, l))) if l.starts_with("READY") => ready += 1,
                Ok(Some((i, l))) if l == "EOF" => bail!("worker {i} exited before it was ready"),
                Ok(Some(_)) => {}
                Ok(None) => bail!("workers went away"),
                Err(_) => bail!("--timeout reached while connecting"),
            }
        }
        eprintln!("all {procs} workers ready");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before: Vec<Value> = {
            let mut v = Vec::new();
            for h in &hubs {
                v.push(json!({"server": h.to_string(), "metrics": scrape(*h).await}));
            }
            v
        };
        for c in &mut children {
            if let Some(stdin) = c.stdin.as_mut() {
                stdin.write_all(b"GO\n").await?;
                stdin.flush().await?;
            }
        }
        let go_ns = now_ns();
        let mut kill = json!(null);
        let kill_at = tokio::time::Instant::now() + Duration::from_secs_f64(fo.kill_after);
        let mut kill_ns = None;
        let mut watch: Option<tokio::task::JoinHandle<Value>> = None;
        let survivors: Vec<SocketAddr> = hubs.iter().copied().filter(|h| Some(*h) != kill_addr).collect();
        let mut results = Vec::new();
        let mut done = 0;
        while done < procs {
            tokio::select! {
                _ = tokio::time::sleep_until(kill_at), if fo.kill_pid.is_some() && kill_ns.is_none() => {
                    let pid = fo.kill_pid.expect("guarded");
                    let owned = match kill_addr {
                        Some(a) => scrape(a).await.and_then(|m| m.get("cluster_sessions_owned").copied()),
                        None => None,
                    };
                    let rss = rss_kib(&pid.to_string());
                    // SAFETY: kill(2) on the pid the user named.
                    let r = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                    let t = now_ns();
                    kill_ns = Some(t);
                    watch = Some(tokio::spawn(watch_recovery(survivors.clone(), 6.0)));
                    eprintln!("killed pid {pid} (SIGKILL) {:.1} s into the window", (t - go_ns) as f64 / 1e9);
                    kill = json!({
                        "pid": pid,
                        "ok": r == 0,
                        "at_s": (t - go_ns) as f64 / 1e9,
                        "url": kill_addr.map(|a| a.to_string()),
                        "sessions_owned_before": owned,
                        "rss_kib_before": rss,
                    });
                }
                m = rx.recv() => match m {
                    Some((_, l)) if l.starts_with("RESULT ") => {
                        results.push(serde_json::from_str::<FoResult>(&l[7..])?);
                    }
                    Some((i, l)) if l == "EOF" => {
                        if results.len() <= done { bail!("worker {i} exited without a result"); }
                        done += 1;
                    }
                    Some(_) => {}
                    None => break,
                },
                _ = tokio::time::sleep_until(hard) => bail!("--timeout reached during the run"),
            }
        }
        let recovery = match watch {
            Some(w) => w.await.unwrap_or(Value::Null),
            None => Value::Null,
        };
        if let Some(k) = kill.as_object_mut() {
            k.insert("recovery".into(), recovery);
        }
        let mut after = Vec::new();
        for h in &hubs {
            if Some(*h) != kill_addr {
                after.push(json!({"server": h.to_string(), "metrics": scrape(*h).await}));
            }
        }
        Ok((results, kill, kill_ns, go_ns, before, after))
    }
    .await;
    for mut c in children {
        let _ = tokio::time::timeout(Duration::from_secs(5), c.wait()).await;
        let _ = c.start_kill();
    }
    let _ = std::fs::remove_file(&setup_path);
    let (results, kill, kill_ns, go_ns, before, after) = result?;
    let report = report(
        &plan, &fo, &setup, &results, kill, kill_ns, go_ns, before, after, procs,
    )?;
    if common.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn report(
    plan: &Plan,
    fo: &FoArgs,
    setup: &FoSetup,
    rs: &[FoResult],
    kill: Value,
    kill_ns: Option<u64>,
    go_ns: u64,
    before: Vec<Value>,
    after: Vec<Value>,
    procs: usize,
) -> anyhow::Result<Value> {
    let sum = |f: fn(&FoResult) -> u64| rs.iter().map(f).sum::<u64>();
    let mut join = new_hist();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut closes: BTreeMap<String, u64> = BTreeMap::new();
    let mut refused: BTreeMap<String, u64> = BTreeMap::new();
    let mut ops: Vec<OpRecord> = Vec::new();
    let mut unacked = Vec::new();
    let mut finals = Vec::new();
    for r in rs {
        join.add(hist_from_b64(&r.hist_join)?)?;
        for (m, src) in [
            (&mut errors, &r.errors),
            (&mut closes, &r.closes),
            (&mut refused, &r.refused),
        ] {
            for (k, v) in src {
                *m.entry(k.clone()).or_default() += v;
            }
        }
        ops.extend(r.ops.iter().cloned());
        unacked.extend(r.unacked.iter().cloned());
        finals.extend(r.finals.iter().cloned());
    }
    let mut all = new_hist();
    let mut before_kill = new_hist();
    let mut affected = new_hist();
    let mut in_flight = new_hist();
    let mut moved = new_hist();
    let mut after_all = new_hist();
    let mut last_stalled_ack_s: f64 = 0.0;
    let window = (fo.after_kill_window * 1e9) as u64;
    for o in &ops {
        let us = ((o.4 - o.3) / 1000).max(1);
        all.saturating_record(us);
        let Some(k) = kill_ns else { continue };
        if o.4 < k {
            before_kill.saturating_record(us);
            continue;
        }
        after_all.saturating_record(us);
        let at_kill = o.3 <= k;
        if at_kill {
            in_flight.saturating_record(us);
            last_stalled_ack_s = last_stalled_ack_s.max((o.4 - k) as f64 / 1e9);
        }
        if at_kill || o.3 < k + window {
            affected.saturating_record(us);
        }
        if o.7 {
            moved.saturating_record(us);
        }
    }
    // Per session: how long after the kill its first op was acked again
    // (the session's own outage, as its writer sees it). Sessions with no
    // ack after the kill are counted apart.
    let mut session_resumed = new_hist();
    let mut sessions_never_resumed = 0u64;
    if let Some(k) = kill_ns {
        let mut first: BTreeMap<usize, u64> = BTreeMap::new();
        for o in ops.iter().filter(|o| o.4 >= k) {
            let e = first.entry(o.0).or_insert(o.4);
            *e = (*e).min(o.4);
        }
        for t in first.values() {
            session_resumed.saturating_record(((t - k) / 1000).max(1));
        }
        sessions_never_resumed = (setup.sessions.len() as u64).saturating_sub(first.len() as u64);
    }
    // Acks per 100 ms around the kill: when acking resumed.
    let timeline = kill_ns.map(|k| {
        let mut buckets: BTreeMap<i64, u64> = BTreeMap::new();
        for o in &ops {
            let b = (o.4 as i64 - k as i64).div_euclid(100_000_000);
            if (-10..50).contains(&b) {
                *buckets.entry(b).or_default() += 1;
            }
        }
        (-10..50)
            .map(|b| buckets.get(&b).copied().unwrap_or(0))
            .collect::<Vec<_>>()
    });
    let db = match &fo.database_url {
        Some(url) => check_db(url, &setup.nonce, &setup.sessions, &ops, &unacked, &finals)
            .unwrap_or_else(|e| json!({"error": e.to_string()})),
        None => json!(null),
    };
    let cstart = rs.iter().map(|r| r.connect_start_ns).min().unwrap_or(0);
    let cend = rs.iter().map(|r| r.connect_end_ns).max().unwrap_or(0);
    let wend = rs.iter().map(|r| r.window_end_ns).max().unwrap_or(0);
    Ok(json!({
        "scenario": "failover",
        "plan": {
            "sessions": plan.sessions,
            "listeners": plan.total_listeners(),
            "writers_per_session": 1,
            "rate_ops_per_s": plan.rate,
            "duration_s": plan.duration_s,
            "drain_s": plan.drain_s,
            "kill_after_s": fo.kill_after,
            "after_kill_window_s": fo.after_kill_window,
            "retry_pause_ms": fo.retry_pause_ms,
            "op_timeout_ms": fo.op_timeout_ms,
            "procs": procs,
            "nodes": setup.dsts.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        },
        "kill": kill,
        "connections": {
            "listeners_joined": sum(|r| r.listeners_joined),
            "writers_joined": sum(|r| r.writers_joined),
            "failures": sum(|r| r.join_failures),
            "connect_s": cend.saturating_sub(cstart) as f64 / 1e9,
            "join_latency": hist_ms(&join),
        },
        "ops": {
            "first_sent": sum(|r| r.ops_first_sent),
            "acked": ops.len(),
            "acked_per_s": ops.len() as f64 / (wend.saturating_sub(go_ns) as f64 / 1e9).max(1e-9),
            "resends": sum(|r| r.resends),
            "unavailable_answers": sum(|r| r.unavailable),
            "op_timeouts": sum(|r| r.op_timeouts),
            "refused": refused,
            "unanswered_at_end": sum(|r| r.unanswered_at_end),
            "stale_acks": sum(|r| r.stale_acks),
            "throttled_ticks": sum(|r| r.throttled_ticks),
            "writer_reconnects": sum(|r| r.writer_reconnects),
            "first_send_to_ack": {
                "all": hist_ms(&all),
                "acked_before_kill": hist_ms(&before_kill),
                "in_flight_at_kill_or_sent_within_window_after": hist_ms(&affected),
                "in_flight_at_kill": hist_ms(&in_flight),
                "acked_after_kill_all": hist_ms(&after_all),
                "writer_changed_node": hist_ms(&moved),
            },
            "last_in_flight_op_acked_s_after_kill": last_stalled_ack_s,
            "session_first_ack_after_kill": hist_ms(&session_resumed),
            "sessions_without_ack_after_kill": sessions_never_resumed,
            "acks_per_100ms_from_1s_before_kill": timeline,
        },
        "listeners": {
            "deliveries": sum(|r| r.deliveries),
            "gaps": sum(|r| r.gaps),
            "missing_versions": sum(|r| r.missing_versions),
            "out_of_order": sum(|r| r.out_of_order),
            "rejoins": sum(|r| r.listener_rejoins),
            "resumed": sum(|r| r.resumed),
            "snapshots_on_rejoin": sum(|r| r.snapshots_on_rejoin),
        },
        "db_check": db,
        "errors": errors,
        "closes": closes,
        "metrics_before": before,
        "metrics_after": after,
        "generator_rss_kib": rs.iter().map(|r| r.worker_rss_kib).sum::<u64>(),
    }))
}

fn print_table(r: &Value) {
    let lat = |v: &Value| {
        if v.is_null() {
            "-".to_owned()
        } else {
            format!(
                "p50 {} / p99 {} / max {} ms (n={})",
                v["p50_ms"], v["p99_ms"], v["max_ms"], v["count"]
            )
        }
    };
    let row = |k: &str, v: String| println!("  {k:<44} {v}");
    row("plan", r["plan"].to_string());
    row("kill", r["kill"].to_string());
    let c = &r["connections"];
    row(
        "joined (listeners + writers) / failures",
        format!(
            "{} + {} / {}",
            c["listeners_joined"], c["writers_joined"], c["failures"]
        ),
    );
    let o = &r["ops"];
    row(
        "ops first sent / acked / unanswered at end",
        format!(
            "{} / {} / {}",
            o["first_sent"], o["acked"], o["unanswered_at_end"]
        ),
    );
    row(
        "resends / unavailable / timeouts / reconnects",
        format!(
            "{} / {} / {} / {}",
            o["resends"], o["unavailable_answers"], o["op_timeouts"], o["writer_reconnects"]
        ),
    );
    row("refused", o["refused"].to_string());
    let h = &o["first_send_to_ack"];
    row("first send → ack, all", lat(&h["all"]));
    row("  acked before the kill", lat(&h["acked_before_kill"]));
    row(
        "  in flight at the kill or sent soon after",
        lat(&h["in_flight_at_kill_or_sent_within_window_after"]),
    );
    row("  in flight at the kill", lat(&h["in_flight_at_kill"]));
    row("  writer changed node", lat(&h["writer_changed_node"]));
    row(
        "per session: kill → its first ack after",
        lat(&o["session_first_ack_after_kill"]),
    );
    row(
        "last op in flight at the kill acked (s after)",
        o["last_in_flight_op_acked_s_after_kill"].to_string(),
    );
    let l = &r["listeners"];
    row(
        "listener deliveries / gaps / out of order",
        format!(
            "{} / {} / {}",
            l["deliveries"], l["gaps"], l["out_of_order"]
        ),
    );
    row(
        "listener rejoins (resumed / snapshot)",
        format!(
            "{} ({} / {})",
            l["rejoins"], l["resumed"], l["snapshots_on_rejoin"]
        ),
    );
    row("db check", r["db_check"].to_string());
    row("errors", r["errors"].to_string());
    row("closes", r["closes"].to_string());
}
