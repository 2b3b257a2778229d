//! `audotics-hub`: parse flags, then hand over to the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use audotics_hub::config::{
    ClusterConfig, Config, Database, HttpConfig, HubConfig, PasswordHash, RateLimits,
    DEFAULT_TOKEN_LIFETIME,
};
use audotics_hub::{app, db, demo, telemetry, App};
use clap::{Args, Parser, Subcommand};

/// mimalloc instead of glibc's malloc: glibc kept every peak (argon2's
/// 19 MiB per hash, connection bursts) in per-thread arenas for the life of
/// the process; measured idle hub after sign-ups 223 MB → 23 MB RSS.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "audotics-hub",
    version,
    about = "Real-time session hub for Audotics group listening"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve REST, WebSocket and the web client. Without a database URL, runs a
    /// private Postgres under <data-dir>/postgres.
    Serve(Box<ServeArgs>),
    /// Create or update the database schema (adopts an existing Prisma database).
    Migrate(DbArgs),
    /// Load the generated demo catalog (3,000 sample tracks, Spotify ids
    /// starting with `demo`) into the database, then exit. Idempotent.
    Demo(DbArgs),
    /// Run only the private Postgres (migrated) until SIGINT/SIGTERM, for
    /// several hubs to share: prints `DATABASE_URL=…` for them.
    Postgres(PostgresArgs),
}

#[derive(Args)]
struct PostgresArgs {
    /// Where the private cluster lives.
    #[arg(long, env = "AUDOTICS_DATA_DIR", default_value = ".audotics")]
    data_dir: PathBuf,
}

#[derive(Args)]
struct ClusterArgs {
    /// NATS server to join a cluster of hubs through (e.g.
    /// nats://127.0.0.1:4222); without it the hub runs alone.
    #[arg(long, env = "AUDOTICS_NATS_URL")]
    nats: Option<String>,
    /// Name of the cluster (the NATS subject prefix): hubs with the same name
    /// and NATS server serve the same sessions.
    #[arg(long, env = "AUDOTICS_CLUSTER", default_value = "audotics")]
    cluster: String,
    /// This node's name in the cluster (default: random).
    #[arg(long, env = "AUDOTICS_NODE_ID")]
    node_id: Option<String>,
}

#[derive(Args)]
struct DbArgs {
    /// Postgres URL; omit to use the private cluster.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Where the private cluster lives (when no URL is given).
    #[arg(long, env = "AUDOTICS_DATA_DIR", default_value = ".audotics")]
    data_dir: PathBuf,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "AUDOTICS_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Postgres connections in the pool.
    #[arg(long, env = "AUDOTICS_POOL_SIZE", default_value_t = 16)]
    pool_size: u32,
    /// Seconds an idle session actor (no listeners) lives on.
    #[arg(long, env = "AUDOTICS_IDLE_SECS", default_value_t = HubConfig::default().idle_timeout.as_secs())]
    idle_secs: u64,
    /// Maximum concurrent WebSocket connections.
    #[arg(long, env = "AUDOTICS_MAX_CONNECTIONS", default_value_t = HubConfig::default().max_connections)]
    max_connections: usize,
    /// Sustained ops per second per connection (the protocol's default).
    #[arg(long, env = "AUDOTICS_OPS_PER_SEC", default_value_t = HubConfig::default().ops_per_sec)]
    ops_per_sec: f64,
    /// Op burst per connection (the protocol's default).
    #[arg(long, env = "AUDOTICS_OPS_BURST", default_value_t = HubConfig::default().ops_burst)]
    ops_burst: f64,
    /// TCP connections in all (default: the open files limit less what the
    /// hub needs itself); past it, new connections get 503.
    #[arg(long, env = "AUDOTICS_MAX_HTTP_CONNECTIONS")]
    max_http_connections: Option<usize>,
    /// Connections per client address that have not joined a session
    /// (0: no cap, e.g. behind a load balancer that enforces one).
    #[arg(long, env = "AUDOTICS_MAX_UNPROVEN_PER_IP", default_value_t = HttpConfig::default().max_unproven_per_ip)]
    max_unproven_per_ip: usize,
    /// Seconds a client may take to send a request head (and may idle
    /// between requests) before its connection is closed.
    #[arg(long, env = "AUDOTICS_HEADER_TIMEOUT_SECS", default_value_t = HttpConfig::default().header_timeout.as_secs())]
    header_timeout_secs: u64,
    /// Registrations (and guest accounts and their claims) per client
    /// address per minute (also the burst).
    #[arg(long, env = "AUDOTICS_SIGNUPS_PER_MINUTE", default_value_t = RateLimits::default().signups_per_minute)]
    signups_per_minute: u32,
    /// Sign-in attempts per client address per minute (also the burst).
    #[arg(long, env = "AUDOTICS_SIGNINS_PER_MINUTE", default_value_t = RateLimits::default().signins_per_minute)]
    signins_per_minute: u32,
    /// Sessions one account may create per hour (also the burst).
    #[arg(long, env = "AUDOTICS_SESSIONS_PER_HOUR", default_value_t = RateLimits::default().sessions_per_hour)]
    sessions_per_hour: u32,
    /// Ops one account may send per second over all its connections (also
    /// the burst).
    #[arg(long, env = "AUDOTICS_ACCOUNT_OPS_PER_SEC", default_value_t = RateLimits::default().account_ops_per_sec)]
    account_ops_per_sec: u32,
    /// Join-code lookups per client address per minute (also the burst).
    #[arg(long, env = "AUDOTICS_JOIN_LOOKUPS_PER_MINUTE", default_value_t = RateLimits::default().join_lookups_per_minute)]
    join_lookups_per_minute: u32,
    /// Days an unused token lives (each use extends it).
    #[arg(long, env = "AUDOTICS_TOKEN_DAYS", default_value_t = DEFAULT_TOKEN_LIFETIME.as_secs() / 86_400)]
    token_days: u64,
    /// Hash written for new passwords: bcrypt (cost 10; the old app can sign
    /// these accounts in too) or argon2id (stronger; the hub only). Sign-in
    /// accepts both.
    #[arg(long, env = "AUDOTICS_PASSWORD_HASH", value_enum, default_value_t = PasswordHash::default())]
    password_hash: PasswordHash,
    /// Load the demo catalog (see `demo`) before serving.
    #[arg(long)]
    demo: bool,
    /// Serve the web client from this folder instead of the embedded copy.
    #[arg(long, env = "AUDOTICS_WEB_DIR")]
    web_dir: Option<PathBuf>,
}

impl DbArgs {
    fn database(&self) -> Database {
        match &self.database_url {
            Some(url) => Database::Url(url.clone()),
            None => Database::Private(self.data_dir.join("postgres")),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Migrate(args) => migrate(args).await,
        Command::Demo(args) => load_demo(args).await,
        Command::Postgres(args) => postgres(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let hub = HubConfig {
        idle_timeout: std::time::Duration::from_secs(args.idle_secs),
        max_connections: args.max_connections,
        ops_per_sec: args.ops_per_sec,
        ops_burst: args.ops_burst,
        ..HubConfig::default()
    };
    let config = Config {
        bind: args.bind,
        database: args.db.database(),
        pool_size: args.pool_size,
        web_dir: args.web_dir,
        hub,
        http: HttpConfig {
            header_timeout: std::time::Duration::from_secs(args.header_timeout_secs.max(1)),
            max_connections: args.max_http_connections,
            max_unproven_per_ip: args.max_unproven_per_ip,
        },
        limits: RateLimits {
            signups_per_minute: args.signups_per_minute,
            signins_per_minute: args.signins_per_minute,
            sessions_per_hour: args.sessions_per_hour,
            account_ops_per_sec: args.account_ops_per_sec,
            join_lookups_per_minute: args.join_lookups_per_minute,
        },
        token_lifetime: std::time::Duration::from_secs(args.token_days.max(1) * 86_400),
        password_hash: args.password_hash,
        cluster: args.cluster.nats.map(|nats_url| ClusterConfig {
            nats_url,
            name: args.cluster.cluster,
            node_id: args.cluster.node_id,
        }),
    };
    let app = App::build(config).await?;
    if args.demo {
        let n = demo::load(app.db()).await?;
        eprintln!("demo catalog loaded: {n} tracks");
    }
    app.run(app::shutdown_signal()).await
}

async fn postgres(args: PostgresArgs) -> anyhow::Result<()> {
    let dir = args.data_dir.join("postgres");
    let mut pg = db::PrivatePostgres::ensure_started(&dir).await?;
    let url = pg.url("audotics");
    let migrated = async {
        let pool = db::connect(&url, 2).await?;
        db::migrate(&pool).await?;
        pool.close().await;
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = migrated {
        pg.stop();
        return Err(e);
    }
    println!("DATABASE_URL={url}");
    eprintln!(
        "private Postgres running under {}; Ctrl-C stops it",
        dir.display()
    );
    app::shutdown_signal().await;
    tokio::task::block_in_place(|| pg.stop());
    eprintln!("private Postgres stopped");
    Ok(())
}

async fn load_demo(args: DbArgs) -> anyhow::Result<()> {
    let n = with_migrated_db(args, |pool| async move { demo::load(&pool).await }).await?;
    eprintln!("demo catalog loaded: {n} tracks");
    Ok(())
}

async fn migrate(args: DbArgs) -> anyhow::Result<()> {
    with_migrated_db(args, |_| async { Ok(()) }).await?;
    eprintln!("migrations applied");
    Ok(())
}

/// Run `work` on a migrated pool for `args`' database, starting (and then
/// stopping) the private cluster around it when no URL is given.
async fn with_migrated_db<T, F, Fut>(args: DbArgs, work: F) -> anyhow::Result<T>
where
    F: FnOnce(sqlx::PgPool) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let config = Config {
        database: args.database(),
        ..Config::for_database_url(String::new())
    };
    let (url, mut cluster) = app::database(&config).await?;
    let result = async {
        let pool = db::connect(&url, 2).await?;
        db::migrate(&pool).await?;
        let out = work(pool.clone()).await;
        pool.close().await;
        out
    }
    .await;
    if let Some(c) = cluster.as_mut() {
        c.stop();
    }
    result
}
