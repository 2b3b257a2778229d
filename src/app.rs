//! Building and running the hub: the seam `main` and the tests share.
//! `App::build` gets a database (provisioning a private cluster when no URL
//! is given), migrates it and binds the listener; `App::run` serves until the
//! shutdown future resolves, then drains and closes everything it opened.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::config::{Config, Database};
use crate::db::{self, Cluster};
use crate::http::{self, AppState};
use crate::hub::Hub;
use crate::metrics::Metrics;

pub struct App {
    listener: TcpListener,
    state: AppState,
    cluster: Option<Cluster>,
}

/// Resolve the database URL, starting the private cluster if needed.
pub async fn database(config: &Config) -> anyhow::Result<(String, Option<Cluster>)> {
    match &config.database {
        Database::Url(url) => Ok((url.clone(), None)),
        Database::Private(dir) => {
            let cluster = Cluster::ensure_started(dir).await?;
            let url = cluster.url("audotics");
            tracing::info!(%url, dir = %dir.display(), "using the private Postgres cluster");
            Ok((url, Some(cluster)))
        }
    }
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let (url, mut cluster) = database(&config).await?;
        let pool = match connect_and_migrate(&url, config.pool_size).await {
            Ok(pool) => pool,
            Err(e) => {
                if let Some(c) = cluster.as_mut() {
                    c.stop();
                }
                return Err(e);
            }
        };
        raise_open_files_limit();
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::new(pool.clone(), metrics.clone(), config.hub.clone());
        let state = AppState {
            db: pool,
            metrics,
            hub,
            config: Arc::new(config),
        };
        Ok(App {
            listener,
            state,
            cluster,
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
            mut cluster,
        } = self;
        tracing::info!(addr = %listener.local_addr()?, "audotics-hub listening");
        let router = http::router(state.clone());
        // On the signal, WebSocket listeners are told 1001 at once, while
        // HTTP requests in flight finish.
        let hub_stop = state.hub.shutdown_token();
        let signal = async move {
            shutdown.await;
            hub_stop.cancel();
        };
        // TCP_NODELAY: frames are small and latency is the product; without
        // it Nagle holds a frame back until the peer ACKs the previous one.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let serve = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(signal);
        let result = serve.await;
        tracing::info!("shutting down: draining");
        let _ = tokio::time::timeout(Duration::from_secs(10), state.hub.shutdown()).await;
        state.db.close().await;
        if let Some(c) = cluster.as_mut() {
            tokio::task::block_in_place(|| c.stop());
            tracing::info!("private Postgres stopped");
        }
        result.context("serving HTTP")
    }
}

async fn connect_and_migrate(url: &str, pool_size: u32) -> anyhow::Result<PgPool> {
    let pool = db::connect(url, pool_size)
        .await
        .context("connecting to Postgres")?;
    db::migrate(&pool).await.context("running migrations")?;
    Ok(pool)
}

/// Each connection is a file descriptor: lift the soft limit to the hard one.
fn raise_open_files_limit() {
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
