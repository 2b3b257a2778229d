//! One typed configuration for the whole hub, built from CLI flags and the
//! environment by `main`, or directly by tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the database is.
#[derive(Clone, Debug)]
pub enum Database {
    /// An existing server (`DATABASE_URL`).
    Url(String),
    /// A private cluster the hub starts itself, kept in this folder.
    Private(PathBuf),
}

/// Limits and timings of the session hub; defaults are the protocol's.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// An actor with no listeners stops after this long.
    pub idle_timeout: Duration,
    /// Maximum queue entries per session (`too_large` past it).
    pub queue_cap: usize,
    /// Sustained ops per second per connection.
    pub ops_per_sec: f64,
    /// Burst size of the per-connection token bucket.
    pub ops_burst: f64,
    /// Refused ops (rate limited) in a row before closing with 4029.
    pub rate_strikes: u32,
    /// Concurrent WebSocket connections; the next one is refused with 503.
    pub max_connections: usize,
    /// A listener more than this many frames behind is closed with 4008.
    pub outbound_frames: usize,
    /// A listener more than this many bytes behind is closed with 4008.
    pub outbound_bytes: usize,
    /// WebSocket ping interval; a peer silent for 1.5× this is dropped.
    pub ping_interval: Duration,
    /// A connection that has not joined within this is closed with 4009.
    pub join_timeout: Duration,
    /// Largest inbound message (after reassembly).
    pub max_message_bytes: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            idle_timeout: Duration::from_secs(60),
            queue_cap: 10_000,
            ops_per_sec: 20.0,
            ops_burst: 40.0,
            rate_strikes: 20,
            max_connections: 100_000,
            outbound_frames: 1024,
            outbound_bytes: 1 << 20,
            ping_interval: Duration::from_secs(20),
            join_timeout: Duration::from_secs(10),
            max_message_bytes: 64 * 1024,
        }
    }
}

/// What keeps one client from exhausting the HTTP side.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// A request head must arrive within this after the connection opens
    /// or its last response; slower (or idle) connections are closed.
    pub header_timeout: Duration,
    /// TCP connections in all (HTTP and WebSocket). `None`: the open files
    /// limit less what the hub needs for itself (pool, files).
    pub max_connections: Option<usize>,
    /// Connections per peer address that have not joined a session (a
    /// request being read, an idle keep-alive, a WebSocket before `join`).
    /// 0: no cap (behind a load balancer that enforces its own).
    pub max_unproven_per_ip: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout: Duration::from_secs(10),
            max_connections: None,
            max_unproven_per_ip: 512,
        }
    }
}

/// Rate limits per address or per account (see `http::limits`). Each is
/// also the burst: that many at once, then at the steady rate.
#[derive(Clone, Debug)]
pub struct RateLimits {
    /// Registrations (and guest accounts, and claims of them) per client
    /// address per minute.
    pub signups_per_minute: u32,
    /// Sign-in attempts per client address per minute.
    pub signins_per_minute: u32,
    /// Sessions one account may create per hour.
    pub sessions_per_hour: u32,
    /// Ops one account may send per second, over all its connections to
    /// this hub (each connection also has `HubConfig::ops_per_sec`).
    pub account_ops_per_sec: u32,
    /// Join-code lookups (`GET /v1/join/{code}`) per client address per
    /// minute: enough for a party behind one NAT, far too few to enumerate.
    pub join_lookups_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            signups_per_minute: 60,
            signins_per_minute: 60,
            sessions_per_hour: 60,
            account_ops_per_sec: 60,
            join_lookups_per_minute: 60,
        }
    }
}

/// Which kind of hash the hub writes for a password (at registration, and
/// when it re-hashes one at sign-in). Sign-in accepts both kinds whatever
/// this says; see `auth` for the re-hash rule.
///
/// The trade-off: `Bcrypt` (cost 10, `$2b$10$…`) is what the old app (node
/// `bcrypt`) writes and checks, so both apps can sign in every account, but
/// bcrypt is not memory-hard and only the first 72 bytes of a password count
/// (node `bcrypt` truncates the same way). `Argon2id` is stronger, but the old
/// app cannot sign in an account whose hash the hub wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PasswordHash {
    /// bcrypt, cost 10, `$2b$`: readable by both apps.
    #[default]
    Bcrypt,
    /// argon2id (the `argon2` crate's defaults): the hub only.
    Argon2id,
}

/// A token unused for 30 days expires.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// Everything `App::build` needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub bind: SocketAddr,
    pub database: Database,
    /// Postgres connections in the pool.
    pub pool_size: u32,
    /// Directory of the web client's static files; `None` serves the copy
    /// embedded in the binary.
    pub web_dir: Option<PathBuf>,
    pub hub: HubConfig,
    pub http: HttpConfig,
    pub limits: RateLimits,
    /// A token unused for this long expires (sliding expiry).
    pub token_lifetime: Duration,
    /// The kind of hash the hub writes for passwords.
    pub password_hash: PasswordHash,
    /// Join a cluster of hubs (`None`: this hub runs alone).
    pub cluster: Option<ClusterConfig>,
}

/// How a hub joins a cluster (see `cluster`).
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The NATS server's URL.
    pub nats_url: String,
    /// The cluster's name: the prefix of every subject it uses.
    pub name: String,
    /// This node's name; `None`: a random one.
    pub node_id: Option<String>,
}

impl Config {
    /// A config for `url` on an ephemeral loopback port (tests, tools).
    pub fn for_database_url(url: impl Into<String>) -> Config {
        Config {
            bind: ([127, 0, 0, 1], 0).into(),
            database: Database::Url(url.into()),
            pool_size: 10,
            web_dir: None,
            hub: HubConfig::default(),
            http: HttpConfig::default(),
            limits: RateLimits::default(),
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            password_hash: PasswordHash::default(),
            cluster: None,
        }
    }
}
