//! Building and running the hub: the seam `main` and the tests share.
//! `App::build` gets a database (provisioning a private cluster when no URL
//! is given), migrates it and binds the listener; `App::run` serves until the
//! shutdown future resolves, then drains and closes everything it opened.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::config::{Config, Database};
use crate::db::notify::Heard;
use crate::db::{self, PrivatePostgres};
use crate::db::{sessions, tokens};
use crate::http::gate::Gate;
use crate::http::limits::Limits;
use crate::http::{self, server, AppState};
use crate::hub::Hub;
use crate::metrics::Metrics;

pub struct App {
    listener: TcpListener,
    state: AppState,
    /// Stops the cluster's background tasks (cluster mode).
    cluster_stop: CancellationToken,
    postgres: Option<PrivatePostgres>,
}

/// Resolve the database URL, starting the private cluster if needed.
pub async fn database(config: &Config) -> anyhow::Result<(String, Option<PrivatePostgres>)> {
    match &config.database {
        Database::Url(url) => Ok((url.clone(), None)),
        Database::Private(dir) => {
            let cluster = PrivatePostgres::ensure_started(dir).await?;
            let url = cluster.url("audotics");
            tracing::info!(%url, dir = %dir.display(), "using the private Postgres cluster");
            Ok((url, Some(cluster)))
        }
    }
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<App> {
        // The port first: a hub that cannot serve must not leave a private
        // Postgres running behind it.
        let open_files = raise_open_files_limit();
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let (url, mut postgres) = database(&config).await?;
        let pool = match connect_and_migrate(&url, config.pool_size).await {
            Ok(pool) => pool,
            Err(e) => {
                if let Some(c) = postgres.as_mut() {
                    c.stop();
                }
                return Err(e);
            }
        };
        let mut config = config;
        let gate = connection_caps(&mut config, open_files);
        let metrics = Arc::new(Metrics::default());
        let cluster_stop = CancellationToken::new();
        let cluster = match &config.cluster {
            None => None,
            Some(c) => {
                let joined = Cluster::join(c, &url, metrics.clone(), cluster_stop.clone()).await;
                match joined {
                    Ok(cluster) => Some(cluster),
                    Err(e) => {
                        pool.close().await;
                        if let Some(c) = postgres.as_mut() {
                            c.stop();
                        }
                        return Err(e.context("joining the cluster"));
                    }
                }
            }
        };
        let hub = Hub::new(pool.clone(), metrics.clone(), config.hub.clone(), cluster);
        let state = AppState {
            db: pool,
            metrics,
            hub,
            gate,
            limits: Arc::new(Limits::new(&config.limits)),
            sockets: Arc::default(),
            config: Arc::new(config),
        };
        Ok(App {
            listener,
            state,
            cluster_stop,
            postgres,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn db(&self) -> &PgPool {
        &self.state.db
    }

    /// Serve until `shutdown` resolves; then stop accepting, let requests in
    /// flight finish (bounded), close the pool and the private cluster.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let App {
            listener,
            state,
            cluster_stop,
            mut postgres,
        } = self;
        tracing::info!(addr = %listener.local_addr()?, "audotics-hub listening");
        let router = http::router(state.clone());
        // On the signal, WebSocket listeners are told 1001 at once, while
        // HTTP requests in flight finish.
        let hub_stop = state.hub.shutdown_token();
        let background = tokio::spawn(background(state.clone(), hub_stop.clone()));
        let catalog = state.hub.load_catalog();
        let stop = hub_stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = catalog => {}
                _ = stop.cancelled() => {}
            }
        });
        let signal = async move {
            shutdown.await;
            hub_stop.cancel();
        };
        server::serve(
            listener,
            router,
            state.gate.clone(),
            state.config.http.header_timeout,
            state.metrics.clone(),
            signal,
        )
        .await;
        tracing::info!("shutting down: draining");
        let _ = tokio::time::timeout(Duration::from_secs(10), state.hub.shutdown()).await;
        cluster_stop.cancel();
        let _ = background.await;
        state.db.close().await;
        if let Some(c) = postgres.as_mut() {
            tokio::task::block_in_place(|| c.stop());
            tracing::info!("private Postgres stopped");
        }
        Ok(())
    }
}

/// What runs beside serving until `stop`: what Postgres announces — revoked
/// tokens close their sockets, sessions changed outside the hub reconcile —
/// and the pruning of rate-limit memory.
async fn background(st: AppState, stop: CancellationToken) {
    let notes = db::notify::listen(
        st.db.clone(),
        &[tokens::REVOKED_CHANNEL, sessions::CHANGED_CHANNEL],
        stop.clone(),
        |heard| match heard {
            Heard::Note { channel, payload } if channel == sessions::CHANGED_CHANNEL => {
                st.hub.changed_outside(&payload)
            }
            Heard::Note { payload, .. } => st.sockets.revoked(&payload),
            Heard::Reconnected => {
                st.hub.changed_outside_all();
                // Revocations sent while the connection was down are lost:
                // check every token that still has a socket.
                let (db, sockets) = (st.db.clone(), st.sockets.clone());
                tokio::spawn(async move {
                    let held = sockets.tokens();
                    if let Ok(live) = tokens::live(&db, &held).await {
                        for gone in held.iter().filter(|h| !live.contains(h)) {
                            sockets.revoked(gone);
                        }
                    }
                });
            }
        },
    );
    let prune = async {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            st.limits.prune();
        }
    };
    tokio::select! {
        _ = notes => {}
        _ = prune => {}
        _ = stop.cancelled() => {}
    }
}

async fn connect_and_migrate(url: &str, pool_size: u32) -> anyhow::Result<PgPool> {
    let pool = db::connect(url, pool_size)
        .await
        .context("connecting to Postgres")?;
    db::migrate(&pool).await.context("running migrations")?;
    Ok(pool)
}

/// The gate's caps from the open files limit, and the WebSocket cap kept
/// below them so that plain HTTP (`/healthz`, REST) still has room when
/// WebSockets fill the hub.
fn connection_caps(config: &mut Config, open_files: u64) -> Arc<Gate> {
    // Descriptors the hub needs besides connections: the pool, the
    // listener, log and data files, the private cluster's pipes.
    let own = config.pool_size as usize + 64;
    let derived = (open_files as usize).saturating_sub(own).max(1);
    let total = config.http.max_connections.unwrap_or(derived).min(derived);
    let headroom = (total / 10).clamp(1, 256);
    let ws = config
        .hub
        .max_connections
        .min(total.saturating_sub(headroom).max(1));
    tracing::info!(
        total,
        websockets = ws,
        unproven_per_ip = config.http.max_unproven_per_ip,
        "connection caps"
    );
    config.hub.max_connections = ws;
    Gate::new(total, config.http.max_unproven_per_ip)
}

/// Each connection is a file descriptor: lift the soft limit to the hard
/// one. Returns the limit in force.
fn raise_open_files_limit() -> u64 {
    // SAFETY: plain getrlimit/setrlimit on our own process.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            let wanted = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                lim = wanted;
            }
        }
        tracing::info!(open_files_limit = lim.rlim_cur, "file descriptor limit");
        match lim.rlim_cur {
            // Unknown: assume the common default.
            0 => 1024,
            n => n,
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}
