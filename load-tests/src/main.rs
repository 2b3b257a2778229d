//! `audotics-load`: drive the Audotics hub (or the floor server) with many
//! WebSocket listeners and writers, from several worker processes, and
//! report one merged result.
//!
//! The parent prepares the run (users, sessions and tracks through REST),
//! then re-executes itself N times with `--worker-index i --worker-of n
//! --setup FILE`. Each worker connects its share, prints `READY`, waits for
//! `GO` on stdin, runs the measured window, drains, and prints `RESULT
//! {json}`. The parent merges counts and HdrHistograms (V2, base64) and
//! samples the hub's RSS and CPU from /proc.

mod common;
mod engine;
mod failover;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use audotics_client::Rest;
use audotics_protocol::model::TrackBody;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use common::*;
use engine::{Plan, SessionSetup, Setup, Spread};

#[derive(Parser)]
#[command(
    name = "audotics-load",
    about = "Load generator for the Audotics hub: connect, fanout, ops and churn scenarios",
    long_about = "Load generator for the Audotics hub. Every scenario registers a bounded pool of \
                  users through REST, spreads its connections over worker processes (--procs) and \
                  loopback source addresses, runs for a bounded time and stops by itself. Only \
                  127.0.0.0/8 targets are accepted."
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Open N joined listeners across S sessions and hold them: connect rate,
    /// failures, hub RSS per connection.
    Connect(ConnectArgs),
    /// S sessions × L listeners, W writers per session at R ops/s in total:
    /// deliveries/s, gap checks, send→receive latency. Runs against the hub
    /// or the floor server with the same flags.
    Fanout(FanoutArgs),
    /// Many sessions, few listeners: durably acked ops/s and ack latency.
    Ops(OpsArgs),
    /// Listeners leaving and rejoining with `since` at a given rate while
    /// writers keep the sessions moving.
    Churn(ChurnArgs),
    /// A cluster node killed (SIGKILL) under writes: one writer per session
    /// with one op in flight, re-sent with the same `req` on another node;
    /// listeners resume elsewhere with `since`. Time from an op's first
    /// send to its ack; Postgres checked for lost or duplicated acked ops.
    Failover(FailoverArgs),
}

#[derive(Args, Clone)]
struct Common {
    /// Hub base URL (REST and /v1/ws). Must be a 127.0.0.0/8 address.
    /// Several hubs of a cluster: repeat the flag (or `--url`), or separate
    /// URLs with commas. The REST setup goes to the first; connections are
    /// spread round-robin: connection g joins through URL g mod n, numbering
    /// listeners first (over all sessions), then writers (session by session).
    #[arg(
        long,
        visible_alias = "url",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8080"
    )]
    hub: Vec<String>,
    /// Worker processes; each holds its share of the connections and must
    /// stay under the per-process open-files limit.
    #[arg(long, default_value_t = 1)]
    procs: usize,
    /// Loopback source addresses to spread connections over (127.0.0.1,
    /// 127.0.0.2, …). 0 = one per 25,000 connections.
    #[arg(long, default_value_t = 0)]
    source_ips: usize,
    /// Users registered for the run (listeners reuse them round-robin).
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Pid of the hub (of the first --hub URL, or of the first --floor), to
    /// report its RSS and CPU from /proc.
    #[arg(long)]
    hub_pid: Option<u32>,
    /// Pids of the cluster's nodes (comma-separated or repeated), in the
    /// order of the --hub URLs: each one's RSS (before, loaded, peak) and CPU
    /// is reported under `nodes`.
    #[arg(long, value_delimiter = ',')]
    node_pid: Vec<u32>,
    /// Hub URL that the REST setup (users, tracks, sessions) goes to
    /// instead of the first --hub (a node that takes no connections, so
    /// the measured nodes' RSS does not include it).
    #[arg(long)]
    setup_hub: Option<String>,
    /// Hub URLs the writers go to (round-robin, like --hub) instead of the
    /// --hub URLs; URLs not among --hub are added to the servers.
    #[arg(long, value_delimiter = ',')]
    writer_hub: Vec<String>,
    /// Before connecting, join every session once through this hub URL and
    /// leave again: in a cluster, that node then owns (runs) every session.
    #[arg(long)]
    prime_owner: Option<String>,
    /// Parallel connection attempts per worker.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Connections per second in total during the connect phase (0 = as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    connect_rate: f64,
    /// Print the merged report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Abandon the run (and stop the workers) after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    #[arg(long, hide = true)]
    worker_index: Option<usize>,
    #[arg(long, hide = true, default_value_t = 1)]
    worker_of: usize,
    #[arg(long, hide = true)]
    setup: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct ConnectArgs {
    #[command(flatten)]
    common: Common,
    /// Listeners in total.
    #[arg(long, short = 'n', default_value_t = 1000)]
    listeners: usize,
    /// Sessions they are spread over.
    #[arg(long, short = 's', default_value_t = 100)]
    sessions: usize,
    /// Seconds to hold them once all are joined.
    #[arg(long, default_value_t = 10.0)]
    hold: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    Hub,
    Floor,
}

#[derive(Args, Clone)]
struct FanoutArgs {
    #[command(flatten)]
    common: Common,
    /// Server to drive: the hub, or the floor (audotics-floor) at --floor.
    #[arg(long, value_enum, default_value_t = Target::Hub)]
    target: Target,
    /// Address of the floor server; several, comma-separated, spread the
    /// sessions over them round-robin (one process holds at most ~20,000
    /// connections here, so 100,000 listeners need several floors).
    #[arg(long, default_value = "127.0.0.1:9090")]
    floor: String,
    #[arg(long, short = 's', default_value_t = 10)]
    sessions: usize,
    /// Listeners per session.
    #[arg(long, short = 'l', default_value_t = 100)]
    listeners: usize,
    /// Writers per session (the hub allows 20 ops/s per connection).
    #[arg(long, short = 'w', default_value_t = 1)]
    writers: usize,
    /// Ops per second over all writers.
    #[arg(long, short = 'r', default_value_t = 100.0)]
    rate: f64,
    /// Seconds of measured load.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unanswered ops a writer may have before it skips a tick.
    #[arg(long, default_value_t = 64)]
    window: usize,
}

#[derive(Args, Clone)]
struct OpsArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, short = 's', default_value_t = 1000)]
    sessions: usize,
    /// Writers per session (the hub allows 20 ops/s per connection).
    #[arg(long, short = 'w', default_value_t = 2)]
    writers: usize,
    /// Listeners per session besides the writers.
    #[arg(long, short = 'l', default_value_t = 0)]
    listeners: usize,
    /// Ops per second over all writers (open loop, bounded by --window).
    #[arg(long, short = 'r', default_value_t = 20000.0)]
    rate: f64,
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value_t = 32)]
    window: usize,
}

#[derive(Args, Clone)]
struct ChurnArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, short = 's', default_value_t = 20)]
    sessions: usize,
    /// Listeners per session.
    #[arg(long, short = 'l', default_value_t = 50)]
    listeners: usize,
    /// Rejoins per second in total (leave, then join with since).
    #[arg(long, default_value_t = 100.0)]
    churn_rate: f64,
    /// Ops per second in total (one writer per session).
    #[arg(long, short = 'r', default_value_t = 100.0)]
    rate: f64,
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
}

#[derive(Args, Clone)]
struct FailoverArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, short = 's', default_value_t = 1000)]
    sessions: usize,
    /// Listeners per session.
    #[arg(long, short = 'l', default_value_t = 2)]
    listeners: usize,
    /// Ops per second over all writers (one writer per session, at most one
    /// op in flight each: a tick with an op unanswered is skipped).
    #[arg(long, short = 'r', default_value_t = 1000.0)]
    rate: f64,
    /// Seconds of writes.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Seconds after the writes stop for unanswered ops to be answered and
    /// listeners to catch up.
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
    /// Pid of the node to kill with SIGKILL (none: no kill).
    #[arg(long)]
    kill_pid: Option<u32>,
    /// URL of the node killed (its /metrics is read just before the kill).
    #[arg(long)]
    kill_url: Option<String>,
    /// Seconds into the writes when the node is killed.
    #[arg(long, default_value_t = 10.0)]
    kill_after: f64,
    /// Ops first sent up to this many seconds after the kill count as
    /// affected by it (with those in flight at the kill).
    #[arg(long, default_value_t = 5.0)]
    after_kill_window: f64,
    /// Milliseconds to wait before sending an op again after `unavailable`.
    #[arg(long, default_value_t = 200)]
    retry_pause_ms: u64,
    /// Milliseconds without an answer after which an op is sent again (same
    /// `req`) on the same connection.
    #[arg(long, default_value_t = 10_000)]
    op_timeout_ms: u64,
    /// Postgres to check at the end (psql must be installed): every acked
    /// req stored once at its acked version, versions contiguous.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Scenario::Failover(a) = &cli.scenario {
        return failover_main(a.clone());
    }
    let cli = Cli::parse();
    let (common, plan, floor, floor_addr, kind) = match cli.scenario {
        Scenario::Connect(a) => {
            let s = a.sessions.max(1);
            let listeners = (0..s)
                .map(|j| a.listeners / s + usize::from(j < a.listeners % s))
                .collect();
            let plan = base_plan(&a.common, s, listeners, 0, 0.0, 1, a.hold, 0.0);
            (a.common, plan, false, String::new(), "connect")
        }
        Scenario::Fanout(a) => {
            let plan = base_plan(
                &a.common,
                a.sessions,
                vec![a.listeners; a.sessions],
                a.writers,
                a.rate,
                a.window,
                a.duration,
                0.0,
            );
            (a.common, plan, a.target == Target::Floor, a.floor, "fanout")
        }
        Scenario::Ops(a) => {
            let plan = base_plan(
                &a.common,
                a.sessions,
                vec![a.listeners; a.sessions],
                a.writers,
                a.rate,
                a.window,
                a.duration,
                0.0,
            );
            (a.common, plan, false, String::new(), "ops")
        }
        Scenario::Failover(_) => unreachable!("handled above"),
        Scenario::Churn(a) => {
            let plan = base_plan(
                &a.common,
                a.sessions,
                vec![a.listeners; a.sessions],
                1,
                a.rate,
                64,
                a.duration,
                a.churn_rate,
            );
            (a.common, plan, false, String::new(), "churn")
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let (Some(i), Some(path)) = (common.worker_index, &common.setup) {
        let setup: Setup = serde_json::from_slice(&std::fs::read(path)?)?;
        return rt.block_on(async {
            let hard = Duration::from_secs(common.timeout);
            match tokio::time::timeout(hard, engine::run_worker(setup, i, common.worker_of)).await {
                Ok(r) => r,
                Err(_) => bail!("worker {i}: --timeout reached"),
            }
        });
    }
    rt.block_on(parent(common, plan, floor, floor_addr, kind))
}

fn failover_main(a: FailoverArgs) -> anyhow::Result<()> {
    let mut plan = base_plan(
        &a.common,
        a.sessions,
        vec![a.listeners; a.sessions],
        1,
        a.rate,
        1,
        a.duration,
        0.0,
    );
    plan.drain_s = a.drain;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let common = a.common.clone();
    if let (Some(i), Some(path)) = (common.worker_index, &common.setup) {
        let setup: failover::FoSetup = serde_json::from_slice(&std::fs::read(path)?)?;
        return rt.block_on(async {
            let hard = Duration::from_secs(common.timeout);
            match tokio::time::timeout(hard, failover::run_worker(setup, i, common.worker_of)).await
            {
                Ok(r) => r,
                Err(_) => bail!("worker {i}: --timeout reached"),
            }
        });
    }
    let hubs = loopback_addrs(&common.hub.join(","))?;
    let setup_hub = match &common.setup_hub {
        Some(u) => loopback_addr(u)?,
        None => hubs[0],
    };
    let fo = failover::FoArgs {
        database_url: a.database_url,
        kill_pid: a.kill_pid,
        kill_url: a.kill_url,
        kill_after: a.kill_after,
        after_kill_window: a.after_kill_window,
        retry_pause_ms: a.retry_pause_ms,
        op_timeout_ms: a.op_timeout_ms,
    };
    rt.block_on(failover::parent(&common, plan, fo, hubs, setup_hub))
}

#[allow(clippy::too_many_arguments)]
fn base_plan(
    c: &Common,
    sessions: usize,
    listeners: Vec<usize>,
    writers: usize,
    rate: f64,
    window: usize,
    duration: f64,
    churn: f64,
) -> Plan {
    let mut p = Plan {
        sessions,
        listeners,
        writers,
        rate,
        window: window.max(1),
        duration_s: duration,
        drain_s: 2.0,
        churn_rate: churn,
        source_ips: c.source_ips,
        connect_concurrency: c.connect_concurrency,
        connect_rate: c.connect_rate,
    };
    if p.source_ips == 0 {
        p.source_ips = p.total_connections().div_ceil(25_000).max(1);
    }
    p.source_ips = p.source_ips.min(250);
    p
}

async fn parent(
    common: Common,
    plan: Plan,
    floor: bool,
    floor_addr: String,
    kind: &str,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let hard = started + Duration::from_secs(common.timeout);
    let procs = common.procs.max(1);
    let per_proc = plan.total_connections().div_ceil(procs);
    if per_proc + 64 > raise_nofile() as usize {
        bail!(
            "{} connections over {procs} worker(s) is {per_proc} each, above this machine's \
             per-process open-files limit ({}): raise --procs",
            plan.total_connections(),
            raise_nofile()
        );
    }
    if !floor && plan.writers > 0 {
        let per = plan.rate / (plan.sessions * plan.writers) as f64;
        if per > 20.0 {
            eprintln!(
                "warning: {per:.1} ops/s per writer connection is above the hub's default limits \
                 (20/s, burst 40, per connection; 60/s per account): expect rate_limited errors \
                 unless the hub runs with --ops-per-sec/--ops-burst and --account-ops-per-sec \
                 (BENCHMARKS.md, Setup); or add --writers"
            );
        }
    }
    let nonce = format!("{:x}", std::process::id() as u64 ^ now_ns());
    let hubs = loopback_addrs(&common.hub.join(","))?;
    let setup_hub = match &common.setup_hub {
        Some(u) => loopback_addr(u)?,
        None => hubs[0],
    };
    let (mut dsts, ws_path, spread) = if floor {
        (
            loopback_addrs(&floor_addr)?,
            "/".to_owned(),
            Spread::BySession,
        )
    } else {
        (hubs.clone(), "/v1/ws".to_owned(), Spread::ByConnection)
    };
    let tmp = std::env::temp_dir();
    let mut writer_dsts = Vec::new();
    if !floor && !common.writer_hub.is_empty() {
        for a in loopback_addrs(&common.writer_hub.join(","))? {
            let i = match dsts.iter().position(|d| *d == a) {
                Some(i) => i,
                None => {
                    dsts.push(a);
                    dsts.len() - 1
                }
            };
            writer_dsts.push(i);
        }
    }
    let listener_dsts = if writer_dsts.is_empty() {
        Vec::new()
    } else {
        (0..hubs.len()).collect()
    };
    let ring_path = PathBuf::from("/dev/shm").join(format!("audotics-load-{nonce}.ring"));
    let setup_path = tmp.join(format!("audotics-load-{nonce}.json"));
    eprintln!(
        "{kind}: {} sessions, {} listeners, {} writers/session, {} ops/s, {} procs, {} source ips",
        plan.sessions,
        plan.total_listeners(),
        plan.writers,
        plan.rate,
        procs,
        plan.source_ips
    );
    if dsts.len() > 1 {
        eprintln!(
            "{} servers ({}), connections spread {}",
            dsts.len(),
            dsts.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            match spread {
                Spread::BySession => "by session",
                Spread::ByConnection => "round-robin per connection",
            }
        );
    }
    let (sessions, tokens, tracks) = if floor {
        (
            (0..plan.sessions)
                .map(|j| SessionSetup {
                    id: format!("floor-{nonce}-{j}"),
                    host_token: String::new(),
                })
                .collect(),
            vec![String::new()],
            vec![String::new()],
        )
    } else {
        prepare(setup_hub, &common, &plan, &nonce).await?
    };
    if let Some(owner) = &common.prime_owner {
        let owner = loopback_addr(owner)?;
        failover::prime_owner(owner, &sessions).await?;
    }
    let setup = Setup {
        nonce: nonce.clone(),
        floor,
        dsts,
        spread,
        ws_path,
        sessions,
        tokens,
        tracks,
        ring_path: ring_path.display().to_string(),
        plan: plan.clone(),
        writer_dsts,
        listener_dsts,
    };
    Ring::create(&ring_path, plan.streams(floor))?;
    std::fs::write(&setup_path, serde_json::to_vec(&setup)?)?;
    let result = run_workers(&common, &setup_path, procs, hard).await;
    let _ = std::fs::remove_file(&ring_path);
    let _ = std::fs::remove_file(&setup_path);
    let (results, hub) = result?;
    let report = merge(kind, &plan, floor, &results, &hub, procs, &setup.dsts)?;
    if common.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// Users, sessions (hosted by the first users) and tracks, through REST.
/// Run a setup call, waiting out the hub's REST rate limits (429): a hub
/// with its default limits takes a minute per 60 registrations from one
/// address; `serve --signups-per-minute` lifts that (BENCHMARKS.md, Setup).
async fn patiently<T, F, Fut>(call: F) -> Result<T, audotics_client::RestError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, audotics_client::RestError>>,
{
    static WARNED: std::sync::Once = std::sync::Once::new();
    loop {
        match call().await {
            Err(e) if e.status() == Some(429) => {
                WARNED.call_once(|| {
                    eprintln!(
                        "warning: the hub rate-limits the setup (429); waiting. Start it with \
                         --signups-per-minute/--sessions-per-hour to skip this"
                    )
                });
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

async fn prepare(
    hub: std::net::SocketAddr,
    common: &Common,
    plan: &Plan,
    nonce: &str,
) -> anyhow::Result<(Vec<SessionSetup>, Vec<String>, Vec<String>)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let rest = Rest::with_client(format!("http://{hub}"), http);
    let users = common.users.max(1);
    let t0 = Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
    let mut hs = Vec::new();
    for i in 0..users {
        let (rest, nonce, sem) = (rest.clone(), nonce.to_owned(), sem.clone());
        hs.push(tokio::spawn(async move {
            let _p = sem.acquire().await;
            let email = format!("load-{nonce}-{i}@example.test");
            let name = format!("Load {i}");
            let r = patiently(|| rest.register(&email, &name, "load-test-password"))
                .await
                .context("register")?;
            Ok::<String, anyhow::Error>(r.token)
        }));
    }
    let mut tokens = Vec::new();
    for h in hs {
        tokens.push(h.await??);
    }
    eprintln!("registered {users} users in {:.1?}", t0.elapsed());
    let mut tracks = Vec::new();
    let owner = rest.as_user(&tokens[0]);
    for t in 0..50 {
        let track = TrackBody {
            spotify_id: format!("load-track-{t:04}"),
            name: format!("Load Track {t}"),
            artists: vec!["Load Artist".to_owned()],
            album: "Load Album".to_owned(),
            popularity: Some(50),
            duration_ms: None,
            cover_url: None,
        };
        let upserted = owner.upsert_track(&track, None).await.context("track")?;
        tracks.push(upserted.track.id);
    }
    let mut hs = Vec::new();
    for j in 0..plan.sessions {
        let host = tokens[j % users].clone();
        let (rest, sem) = (rest.as_user(&host), sem.clone());
        hs.push(tokio::spawn(async move {
            let _p = sem.acquire().await;
            let name = format!("load session {j}");
            let created = patiently(|| rest.create_session(&name, None))
                .await
                .context("create session")?;
            Ok::<SessionSetup, anyhow::Error>(SessionSetup {
                id: created.session.id,
                host_token: host,
            })
        }));
    }
    let mut sessions = Vec::new();
    for h in hs {
        sessions.push(h.await??);
    }
    eprintln!(
        "prepared {} sessions and {} tracks in {:.1?}",
        sessions.len(),
        tracks.len(),
        t0.elapsed()
    );
    Ok((sessions, tokens, tracks))
}

#[derive(Default)]
struct HubSample {
    rss_before_kib: Option<u64>,
    rss_loaded_kib: Option<u64>,
    rss_peak_kib: Option<u64>,
    hub_cpu_s: Option<f64>,
    machine_busy_cores: Option<f64>,
    window_s: f64,
    nodes: Vec<NodeSample>,
}

/// RSS and CPU of one node given by --node-pid.
#[derive(Default)]
struct NodeSample {
    pid: u32,
    rss_before_kib: Option<u64>,
    rss_loaded_kib: Option<u64>,
    rss_peak_kib: Option<u64>,
    cpu0: Option<u64>,
    cpu_s: Option<f64>,
}

/// What the workers print: (worker index, line).
type WorkerLines = tokio::sync::mpsc::UnboundedReceiver<(usize, String)>;

/// Start `procs` copies of this generator as workers (the same arguments,
/// plus their index and the setup file), each line they print forwarded as
/// (worker, line), and `EOF` when a worker's output ends.
fn spawn_workers(
    setup_path: &std::path::Path,
    procs: usize,
) -> anyhow::Result<(Vec<tokio::process::Child>, WorkerLines)> {
    let exe = std::env::current_exe()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut children = Vec::new();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String)>();
    for i in 0..procs {
        let mut child = tokio::process::Command::new(&exe)
            .args(&args)
            .arg("--worker-index")
            .arg(i.to_string())
            .arg("--worker-of")
            .arg(procs.to_string())
            .arg("--setup")
            .arg(setup_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("spawning a worker")?;
        let out = child.stdout.take().expect("piped");
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(out).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                let _ = tx.send((i, l));
            }
            let _ = tx.send((i, "EOF".into()));
        });
        children.push(child);
    }
    Ok((children, rx))
}

async fn run_workers(
    common: &Common,
    setup_path: &std::path::Path,
    procs: usize,
    hard: Instant,
) -> anyhow::Result<(Vec<WorkerResult>, HubSample)> {
    let pid = common.hub_pid.map(|p| p.to_string());
    let mut hub = HubSample {
        rss_before_kib: pid.as_deref().and_then(rss_kib),
        nodes: common
            .node_pid
            .iter()
            .map(|&p| NodeSample {
                pid: p,
                rss_before_kib: rss_kib(&p.to_string()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let (mut children, mut rx) = spawn_workers(setup_path, procs)?;
    let deadline = tokio::time::Instant::from_std(hard);
    let t_connect = Instant::now();
    let mut ready = 0;
    let mut joined = 0u64;
    while ready < procs {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((_, l))) if l.starts_with("READY") => {
                ready += 1;
                joined += l[5..].trim().parse::<u64>().unwrap_or(0);
            }
            Ok(Some((i, l))) if l == "EOF" => bail!("worker {i} exited before it was ready"),
            Ok(Some(_)) => {}
            Ok(None) => bail!("workers went away"),
            Err(_) => bail!("--timeout reached while connecting"),
        }
    }
    eprintln!(
        "all {procs} workers ready: {joined} connections joined in {:.1?}",
        t_connect.elapsed()
    );
    // Let the join burst (presence frames) settle before measuring RSS.
    tokio::time::sleep(Duration::from_secs(2)).await;
    hub.rss_loaded_kib = pid.as_deref().and_then(rss_kib);
    hub.rss_peak_kib = hub.rss_loaded_kib;
    for n in &mut hub.nodes {
        n.rss_loaded_kib = rss_kib(&n.pid.to_string());
        n.rss_peak_kib = n.rss_loaded_kib;
        n.cpu0 = cpu_ticks(&n.pid.to_string());
    }
    let cpu0 = pid.as_deref().and_then(cpu_ticks);
    let m0 = machine_ticks();
    let w0 = Instant::now();
    for c in &mut children {
        if let Some(stdin) = c.stdin.as_mut() {
            stdin.write_all(b"GO\n").await?;
            stdin.flush().await?;
        }
    }
    let mut results = Vec::new();
    let mut done = 0;
    let mut sample = tokio::time::interval(Duration::from_secs(1));
    let mut cpu_end = None;
    while done < procs {
        tokio::select! {
            m = rx.recv() => match m {
                Some((_, l)) if l.starts_with("RESULT ") => {
                    if cpu_end.is_none() {
                        cpu_end = Some((pid.as_deref().and_then(cpu_ticks), machine_ticks(), w0.elapsed()));
                        for n in &mut hub.nodes {
                            if let (Some(a), Some(b)) = (n.cpu0, cpu_ticks(&n.pid.to_string())) {
                                n.cpu_s = Some((b - a) as f64 / 100.0);
                            }
                        }
                    }
                    results.push(serde_json::from_str::<WorkerResult>(&l[7..])?);
                }
                Some((i, l)) if l == "EOF" => {
                    if results.len() <= done { bail!("worker {i} exited without a result"); }
                    done += 1;
                }
                Some(_) => {}
                None => break,
            },
            _ = sample.tick() => {
                if let Some(r) = pid.as_deref().and_then(rss_kib) {
                    hub.rss_peak_kib = Some(hub.rss_peak_kib.unwrap_or(0).max(r));
                }
                for n in &mut hub.nodes {
                    if let Some(r) = rss_kib(&n.pid.to_string()) {
                        n.rss_peak_kib = Some(n.rss_peak_kib.unwrap_or(0).max(r));
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => bail!("--timeout reached during the run"),
        }
    }
    for mut c in children {
        let _ = tokio::time::timeout(Duration::from_secs(5), c.wait()).await;
        let _ = c.start_kill();
    }
    if let Some((cpu1, m1, el)) = cpu_end {
        hub.window_s = el.as_secs_f64();
        let hz = 100.0;
        if let (Some(a), Some(b)) = (cpu0, cpu1) {
            hub.hub_cpu_s = Some((b - a) as f64 / hz);
        }
        if let (Some(a), Some(b)) = (m0, m1) {
            hub.machine_busy_cores = Some(
                (b.0 - a.0) as f64 / (b.1 - a.1).max(1) as f64
                    * std::thread::available_parallelism()
                        .map(|n| n.get())
                        .unwrap_or(1) as f64,
            );
        }
    }
    Ok((results, hub))
}

fn pct(h: &hdrhistogram::Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!(null);
    }
    let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
    })
}

fn merge(
    kind: &str,
    plan: &Plan,
    floor: bool,
    rs: &[WorkerResult],
    hub: &HubSample,
    procs: usize,
    servers: &[std::net::SocketAddr],
) -> anyhow::Result<Value> {
    let mut lat = new_hist();
    let mut ack = new_hist();
    let mut join = new_hist();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut closes: BTreeMap<String, u64> = BTreeMap::new();
    let sum = |f: fn(&WorkerResult) -> u64| rs.iter().map(f).sum::<u64>();
    for r in rs {
        lat.add(hist_from_b64(&r.hist_latency)?)?;
        ack.add(hist_from_b64(&r.hist_ack)?)?;
        join.add(hist_from_b64(&r.hist_join)?)?;
        for (k, v) in &r.errors {
            *errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &r.closes {
            *closes.entry(k.clone()).or_default() += v;
        }
    }
    let cstart = rs.iter().map(|r| r.connect_start_ns).min().unwrap_or(0);
    let cend = rs.iter().map(|r| r.connect_end_ns).max().unwrap_or(0);
    let wstart = rs.iter().map(|r| r.window_start_ns).min().unwrap_or(0);
    let wend = rs.iter().map(|r| r.window_end_ns).max().unwrap_or(0);
    let window_s = (wend.saturating_sub(wstart)) as f64 / 1e9;
    let connect_s = (cend.saturating_sub(cstart)) as f64 / 1e9;
    let joined = sum(|r| r.listeners_joined) + sum(|r| r.writers_joined);
    let per_server = per_server(rs, servers.len());
    // --hub-pid is the first server's: with several, it holds only what
    // joined through it.
    let joined_first = per_server
        .first()
        .map_or(0, |c| c.listeners_joined + c.writers_joined);
    let per_conn = match (hub.rss_before_kib, hub.rss_loaded_kib) {
        (Some(a), Some(b)) if joined_first > 0 => {
            Some((b.saturating_sub(a)) as f64 * 1024.0 / joined_first as f64)
        }
        _ => None,
    };
    Ok(json!({
        "scenario": kind,
        "target": if floor { "floor" } else { "hub" },
        "plan": {
            "sessions": plan.sessions,
            "listeners": plan.total_listeners(),
            "writers_per_session": plan.writers,
            "rate_ops_per_s": plan.rate,
            "duration_s": plan.duration_s,
            "churn_rate": plan.churn_rate,
            "procs": procs,
            "source_ips": plan.source_ips,
        },
        "connections": {
            "listeners_joined": sum(|r| r.listeners_joined),
            "writers_joined": sum(|r| r.writers_joined),
            "failures": sum(|r| r.join_failures),
            "connect_s": connect_s,
            "connect_rate_per_s": if connect_s > 0.0 { joined as f64 / connect_s } else { 0.0 },
            "join_latency": pct(&join),
            "per_server": servers.iter().zip(&per_server).map(|(s, c)| json!({
                "server": s.to_string(),
                "listeners_joined": c.listeners_joined,
                "writers_joined": c.writers_joined,
                "failures": c.failures,
            })).collect::<Vec<_>>(),
        },
        "deliveries": {
            "total": sum(|r| r.deliveries),
            "in_window": sum(|r| r.deliveries_in_window),
            "per_s": if window_s > 0.0 { sum(|r| r.deliveries_in_window) as f64 / window_s } else { 0.0 },
            "gaps": sum(|r| r.gaps),
            "missing_versions": sum(|r| r.missing_versions),
            "out_of_order": sum(|r| r.out_of_order),
            "latency": pct(&lat),
            "latency_unmatched": sum(|r| r.latency_unmatched),
        },
        "ops": {
            "sent": sum(|r| r.ops_sent),
            "acked": sum(|r| r.ops_acked),
            "acked_per_s": if window_s > 0.0 { sum(|r| r.ops_acked_in_window) as f64 / window_s } else { 0.0 },
            "throttled_ticks": sum(|r| r.throttled_ticks),
            "ack_latency": pct(&ack),
        },
        "churn": {
            "rejoins": sum(|r| r.rejoins),
            "resumed": sum(|r| r.resumed),
            "snapshots_on_rejoin": sum(|r| r.snapshots_on_rejoin),
        },
        "errors": errors,
        "closes": closes,
        "hub": {
            "rss_before_kib": hub.rss_before_kib,
            "rss_loaded_kib": hub.rss_loaded_kib,
            "rss_peak_kib": hub.rss_peak_kib,
            "rss_per_connection_bytes": per_conn,
            "cpu_s": hub.hub_cpu_s,
            "cpu_cores": hub.hub_cpu_s.map(|c| c / hub.window_s.max(1e-9)),
            "machine_busy_cores": hub.machine_busy_cores,
        },
        "nodes": hub.nodes.iter().enumerate().map(|(i, n)| json!({
            "pid": n.pid,
            "server": servers.get(i).map(|s| s.to_string()),
            "rss_before_kib": n.rss_before_kib,
            "rss_loaded_kib": n.rss_loaded_kib,
            "rss_peak_kib": n.rss_peak_kib,
            "cpu_s": n.cpu_s,
            "cpu_cores": n.cpu_s.map(|c| c / hub.window_s.max(1e-9)),
        })).collect::<Vec<_>>(),
        "window_s": window_s,
        "generator_rss_kib": rs.iter().map(|r| r.worker_rss_kib).sum::<u64>(),
    }))
}

/// Per-server counts added up over the workers.
fn per_server(rs: &[WorkerResult], servers: usize) -> Vec<ServerCount> {
    let mut total = vec![ServerCount::default(); servers];
    for r in rs {
        for (t, c) in total.iter_mut().zip(&r.per_server) {
            t.listeners_joined += c.listeners_joined;
            t.writers_joined += c.writers_joined;
            t.failures += c.failures;
        }
    }
    total
}

fn print_table(r: &Value) {
    let mut out = std::io::stdout().lock();
    let mut row = |k: &str, v: String| {
        let _ = writeln!(out, "  {k:<34} {v}");
    };
    let f = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() => format!("{x:.2}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    };
    let lat = |v: &Value| {
        if v.is_null() {
            "-".to_owned()
        } else {
            format!(
                "p50 {} / p99 {} / p99.9 {} / max {} ms (n={})",
                f(&v["p50_ms"]),
                f(&v["p99_ms"]),
                f(&v["p999_ms"]),
                f(&v["max_ms"]),
                v["count"]
            )
        }
    };
    row(
        "scenario / target",
        format!(
            "{} / {}",
            r["scenario"].as_str().unwrap_or(""),
            r["target"].as_str().unwrap_or("")
        ),
    );
    row("plan", r["plan"].to_string());
    let c = &r["connections"];
    row(
        "joined (listeners + writers)",
        format!("{} + {}", c["listeners_joined"], c["writers_joined"]),
    );
    row("connect failures", f(&c["failures"]));
    if let Some(servers) = c["per_server"].as_array().filter(|s| s.len() > 1) {
        let each: Vec<String> = servers
            .iter()
            .map(|s| {
                format!(
                    "{} {} + {} ({} failed)",
                    s["server"].as_str().unwrap_or(""),
                    s["listeners_joined"],
                    s["writers_joined"],
                    s["failures"]
                )
            })
            .collect();
        row("joined per server", each.join(", "));
    }
    row("connect rate (/s)", f(&c["connect_rate_per_s"]));
    row("join latency", lat(&c["join_latency"]));
    let d = &r["deliveries"];
    row(
        "deliveries (window / total)",
        format!("{} / {}", d["in_window"], d["total"]),
    );
    row("deliveries/s", f(&d["per_s"]));
    row(
        "gaps / missing / out of order",
        format!(
            "{} / {} / {}",
            d["gaps"], d["missing_versions"], d["out_of_order"]
        ),
    );
    row("send→receive latency", lat(&d["latency"]));
    row("latency samples unmatched", f(&d["latency_unmatched"]));
    let o = &r["ops"];
    row(
        "ops sent / acked",
        format!("{} / {}", o["sent"], o["acked"]),
    );
    row("acked ops/s", f(&o["acked_per_s"]));
    row("ack latency", lat(&o["ack_latency"]));
    row(
        "writer ticks skipped (window full)",
        f(&o["throttled_ticks"]),
    );
    let ch = &r["churn"];
    row(
        "rejoins (resumed / snapshot)",
        format!(
            "{} ({} / {})",
            ch["rejoins"], ch["resumed"], ch["snapshots_on_rejoin"]
        ),
    );
    row("errors", r["errors"].to_string());
    row("closes", r["closes"].to_string());
    let h = &r["hub"];
    row(
        "hub RSS before / loaded / peak KiB",
        format!(
            "{} / {} / {}",
            f(&h["rss_before_kib"]),
            f(&h["rss_loaded_kib"]),
            f(&h["rss_peak_kib"])
        ),
    );
    row(
        "hub RSS per connection (bytes)",
        f(&h["rss_per_connection_bytes"]),
    );
    row(
        "hub CPU (cores) / machine busy",
        format!("{} / {}", f(&h["cpu_cores"]), f(&h["machine_busy_cores"])),
    );
    if let Some(nodes) = r["nodes"].as_array() {
        for n in nodes {
            row(
                &format!("node pid {} RSS bef/load/peak KiB, CPU", n["pid"]),
                format!(
                    "{} / {} / {}, {} cores ({})",
                    f(&n["rss_before_kib"]),
                    f(&n["rss_loaded_kib"]),
                    f(&n["rss_peak_kib"]),
                    f(&n["cpu_cores"]),
                    n["server"].as_str().unwrap_or("-")
                ),
            );
        }
    }
    row(
        "generator RSS KiB (all workers)",
        f(&r["generator_rss_kib"]),
    );
}
