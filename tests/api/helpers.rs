//! Test harness: one throwaway Postgres cluster per test process (started the
//! same way `serve` starts its private one), a fresh database per test, and
//! the real hub served on an ephemeral loopback port.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use audotics_client::{Rest, Ws};
use audotics_hub::config::{ClusterConfig, Config};
use audotics_hub::db::PrivatePostgres;
use audotics_hub::App;
use audotics_protocol::model::{Snapshot, TrackBody};
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

static CLUSTER: Mutex<Option<PrivatePostgres>> = Mutex::new(None);
static CLUSTER_ROOT: OnceLock<std::path::PathBuf> = OnceLock::new();

extern "C" fn stop_cluster() {
    if let Ok(mut guard) = CLUSTER.lock() {
        if let Some(mut c) = guard.take() {
            c.stop();
        }
    }
    if let Some(root) = CLUSTER_ROOT.get() {
        let _ = std::fs::remove_dir_all(root);
    }
}

/// URL of database `db` in this process's cluster, starting it on first use.
pub fn cluster_url(db: &str) -> String {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        // The postmaster is told to stop when the thread that spawned it
        // exits, so spawn it from a thread that lives as long as the process.
        std::thread::spawn(move || {
            let root = std::env::temp_dir().join(format!("audotics-test-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            let _ = CLUSTER_ROOT.set(root.clone());
            match PrivatePostgres::start_ephemeral(&root) {
                Ok(c) => {
                    *CLUSTER.lock().unwrap() = Some(c);
                    // SAFETY: registering a plain extern "C" fn.
                    unsafe { libc::atexit(stop_cluster) };
                    tx.send(Ok(())).unwrap();
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => tx.send(Err(e.to_string())).unwrap(),
            }
        });
        rx.recv().unwrap()
    });
    if let Err(e) = ready {
        panic!("cannot start the test Postgres cluster: {e}");
    }
    CLUSTER
        .lock()
        .unwrap()
        .as_ref()
        .expect("cluster running")
        .url(db)
}

/// Databases of tests that have ended, to drop.
static ENDED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The databases this test made. libtest runs each test on its own thread,
/// so this is dropped when the test ends (passed or panicked, its runtime
/// and every hub on it already gone), and hands them to [`ENDED`].
struct MadeHere(Vec<String>);

impl Drop for MadeHere {
    fn drop(&mut self) {
        if let Ok(mut ended) = ENDED.lock() {
            ended.append(&mut self.0);
        }
    }
}

thread_local! {
    static MADE_HERE: std::cell::RefCell<MadeHere> =
        const { std::cell::RefCell::new(MadeHere(Vec::new())) };
}

/// A new, empty database; returns its URL. It lives until its test ends;
/// a later test drops it, so a test process keeps on disk only the
/// databases of the tests running (each is ~8 MB).
pub async fn fresh_database() -> String {
    let admin = cluster_url("audotics");
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("connect to the test cluster");
    let ended = std::mem::take(&mut *ENDED.lock().unwrap());
    for old in ended {
        // FORCE: a connection of the ended test's hub may still be closing.
        sqlx::Executor::execute(
            &mut conn,
            format!("DROP DATABASE IF EXISTS {old} WITH (FORCE)").as_str(),
        )
        .await
        .expect("drop an ended test's database");
    }
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create test database");
    MADE_HERE.with(|m| m.borrow_mut().0.push(name.clone()));
    cluster_url(&name)
}

/// The real hub, served by this test on an ephemeral port.
///
/// Dropping it shuts the hub down the way sshx's `TestServer` does: `Drop`
/// cannot await, so it only sends the shutdown signal, and the hub drains on
/// the test's runtime until that runtime ends with the test and cancels what
/// is left (the hub's own tasks, its pool). No hub outlives its test, even
/// one that panics. A test that must know the drain finished, and that `run`
/// returned `Ok` (before restarting on the same database, say), calls
/// [`TestApp::stop`] instead.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub db_url: String,
    pub db: PgPool,
    pub http: reqwest::Client,
    /// REST without a token; [`TestApp::as_user`] for one with.
    pub rest: Rest,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    /// Cluster runs: the other nodes (this struct's own fields are node 0).
    pub others: Vec<TestApp>,
    /// The node the next connection goes to.
    next: AtomicUsize,
}

/// Hubs per test app: 1, or the `AUDOTICS_TEST_NODES` a cluster run sets
/// (`tests/run-all` runs the hub suites again with 3: every app is then a
/// cluster of three hubs on one database and one NATS server, and the
/// connections a test opens alternate between them — the writer on one node,
/// listeners on others).
pub fn test_nodes() -> usize {
    std::env::var("AUDOTICS_TEST_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// Cluster settings for node `i` of a test cluster named `name`.
pub fn cluster_config(nats_url: &str, name: &str, i: usize) -> ClusterConfig {
    ClusterConfig {
        nats_url: nats_url.to_owned(),
        name: name.to_owned(),
        node_id: Some(format!("n{i}")),
    }
}

/// The real hub on a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let db_url = fresh_database().await;
    spawn_app_on(db_url, tweak).await
}

/// The real hub on an existing database (e.g. to restart on the same data):
/// one, or a cluster of [`test_nodes`].
pub async fn spawn_app_on(db_url: String, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config::for_database_url(db_url.clone());
    config.pool_size = 5;
    tweak(&mut config);
    let n = test_nodes();
    if n == 1 {
        return spawn_node(config).await;
    }
    let name = format!("t{}", uuid::Uuid::new_v4().simple());
    let nats = crate::nats::shared_url();
    spawn_cluster(config, &nats, &name, n).await
}

/// `n` hubs of cluster `name` on `config`'s database.
pub async fn spawn_cluster(config: Config, nats: &str, name: &str, n: usize) -> TestApp {
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = config.clone();
        c.cluster = Some(cluster_config(nats, name, i));
        nodes.push(spawn_node(c).await);
    }
    let mut first = nodes.remove(0);
    first.others = nodes;
    // Every node hears the others' heartbeats before the test starts.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    first
}

/// One hub on `config`.
pub async fn spawn_node(config: Config) -> TestApp {
    let db_url = match &config.database {
        audotics_hub::config::Database::Url(u) => u.clone(),
        audotics_hub::config::Database::Private(_) => unreachable!("tests use a URL"),
    };
    let app = App::build(config).await.expect("build app");
    let addr = app.local_addr();
    let db = app.db().clone();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    TestApp {
        addr,
        rest: Rest::with_client(base.clone(), http.clone()),
        base,
        db_url,
        db,
        http,
        shutdown: Some(tx),
        task: Some(task),
        others: Vec::new(),
        next: AtomicUsize::new(0),
    }
}

/// A registered user.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password: String,
    pub token: String,
}

/// The password [`TestApp::register`] gives every user.
pub const PASSWORD: &str = "correct horse battery";

/// An email no other test uses, from a readable prefix.
pub fn unique_email(prefix: &str) -> String {
    format!("{prefix}-{}@example.test", uuid::Uuid::new_v4().simple())
}

/// Track metadata for `spotify_id`, the rest filled in.
pub fn track_meta(spotify_id: &str, name: &str) -> TrackBody {
    TrackBody {
        spotify_id: spotify_id.to_owned(),
        name: name.to_owned(),
        artists: vec!["Artist".to_owned()],
        album: "Album".to_owned(),
        popularity: Some(50),
        duration_ms: None,
        cover_url: None,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// REST as `user`.
    pub fn as_user(&self, user: &TestUser) -> Rest {
        self.rest.as_user(&user.token)
    }

    /// Every node: this one, then the others.
    pub fn nodes(&self) -> impl Iterator<Item = &TestApp> {
        std::iter::once(self).chain(self.others.iter())
    }

    /// The node the next connection goes to (round-robin in a cluster).
    pub fn next_node(&self) -> &TestApp {
        let n = 1 + self.others.len();
        match self.next.fetch_add(1, Ordering::Relaxed) % n {
            0 => self,
            i => &self.others[i - 1],
        }
    }

    /// A WebSocket connection, not yet joined (to the next node).
    pub async fn connect(&self) -> Ws {
        Ws::connect(&self.next_node().rest.ws_url()).await
    }

    /// Connect and join `session` as `user`; the connection and its snapshot.
    pub async fn join(&self, user: &TestUser, session: &str) -> (Ws, Snapshot) {
        let mut ws = self.connect().await;
        let snap = ws.join_snapshot(session, &user.token).await;
        (ws, snap)
    }

    pub async fn register(&self, name: &str) -> TestUser {
        let email = unique_email(&name.to_lowercase());
        let r = self
            .rest
            .register(&email, name, PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("register {name}: {e}"));
        TestUser {
            id: r.user.id,
            email,
            name: name.to_owned(),
            password: PASSWORD.to_owned(),
            token: r.token,
        }
    }

    /// Create a session hosted by `host`; returns (session id, playlist id).
    pub async fn create_session(&self, host: &TestUser, name: &str) -> (String, String) {
        let c = self
            .as_user(host)
            .create_session(name, None)
            .await
            .unwrap_or_else(|e| panic!("create session {name}: {e}"));
        (c.session.id, c.playlist.id)
    }

    /// Upsert a track through REST; returns its id.
    pub async fn track(&self, user: &TestUser, spotify_id: &str, name: &str) -> String {
        self.as_user(user)
            .upsert_track(&track_meta(spotify_id, name), None)
            .await
            .unwrap_or_else(|e| panic!("track upsert: {e}"))
            .track
            .id
    }

    /// Graceful stop (like SIGTERM), waiting for the drain (of every node).
    pub async fn stop(mut self) {
        for other in std::mem::take(&mut self.others) {
            Box::pin(other.stop()).await;
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("app task").expect("app run");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A running hub with a host, a guest, their session and a few tracks.
pub struct Party {
    pub app: TestApp,
    pub host: TestUser,
    pub guest: TestUser,
    pub session: String,
    pub playlist: String,
    pub tracks: Vec<String>,
}

/// A config for tests that send many ops quickly: no rate limit in the way.
pub fn unlimited(c: &mut Config) {
    c.hub.ops_per_sec = 10_000.0;
    c.hub.ops_burst = 10_000.0;
    c.limits.account_ops_per_sec = 10_000;
}

pub async fn party() -> Party {
    party_with(|_| {}).await
}

pub async fn party_with(tweak: impl FnOnce(&mut Config)) -> Party {
    let app = spawn_app_with(tweak).await;
    let host = app.register("Hana").await;
    let guest = app.register("Gus").await;
    let (session, playlist) = app.create_session(&host, "Friday").await;
    let mut tracks = Vec::new();
    for i in 0..5 {
        tracks.push(
            app.track(&host, &format!("sp{i}"), &format!("Song {i}"))
                .await,
        );
    }
    Party {
        app,
        host,
        guest,
        session,
        playlist,
        tracks,
    }
}

/// A number from `sql` with one bound argument.
pub async fn count(app: &TestApp, sql: &str, arg: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(arg)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// How many PlaylistUpdate rows `playlist` has.
pub async fn logged_updates(app: &TestApp, playlist: &str) -> i64 {
    count(
        app,
        r#"SELECT count(*) FROM "PlaylistUpdate" WHERE "playlistId" = $1"#,
        playlist,
    )
    .await
}

/// How many TrackInteraction rows the hub stored for `session`.
pub async fn logged_interactions(app: &TestApp, session: &str) -> i64 {
    count(
        app,
        r#"SELECT count(*) FROM "TrackInteraction" WHERE "hubSessionId" = $1"#,
        session,
    )
    .await
}
