//! A private PostgreSQL cluster run from the server binaries on this machine.
//!
//! The hub needs a real Postgres, and a newcomer should not have to set one up:
//! with no `DATABASE_URL`, `serve` keeps a cluster under `./.audotics/postgres`
//! (created once, reused, stopped with the hub), and the tests start a
//! throwaway one per test process. Both use the same binaries (`initdb`,
//! `pg_ctl`, `postgres`) found on `PATH` or under `/usr/lib/postgresql/*/bin`,
//! and run them as the `postgres` user when we are root (Postgres refuses root).
//! The cluster listens only on a Unix socket inside its own folder, so it never
//! collides with another server's port.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The superuser and database every private cluster gets.
const SUPERUSER: &str = "audotics";
/// The socket "port": only names the socket file, nothing listens on TCP.
const PORT: u16 = 5432;

/// Why a private cluster could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PrivateError {
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH or under \
         /usr/lib/postgresql/*/bin. Install them with `sudo apt-get install -y postgresql` \
         (Debian/Ubuntu), or pass --database-url / set DATABASE_URL to use an existing server."
    )]
    BinariesMissing,
    #[error("running as root, but there is no `postgres` user to run the cluster as: create one with `useradd --system postgres` or install the postgresql package")]
    NoPostgresUser,
    #[error("{step} failed: {detail}")]
    Step { step: &'static str, detail: String },
    #[error("I/O error at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PrivateError + '_ {
    move |source| PrivateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The folder holding `initdb`, `pg_ctl` and `postgres`: PATH first, then the
/// newest `/usr/lib/postgresql/*/bin`.
pub fn find_bin_dir() -> Result<PathBuf, PrivateError> {
    let has_all = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_all(&dir) {
                // Resolve symlinks so we use the real install's sibling binaries.
                let real = std::fs::canonicalize(dir.join("initdb"))
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_owned))
                    .filter(|d| has_all(d))
                    .unwrap_or(dir);
                return Ok(real);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_all(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or(PrivateError::BinariesMissing)
}

/// Who the server processes run as: ourselves, or `postgres` when we are root.
#[derive(Clone, Copy, Debug)]
struct RunAs {
    uid: u32,
    gid: u32,
}

fn run_as() -> Result<Option<RunAs>, PrivateError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = CString::new("postgres").expect("no NUL");
    // SAFETY: getpwnam returns a pointer to static storage or null; we copy the
    // two fields out immediately, before any other call could overwrite it.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(PrivateError::NoPostgresUser);
    }
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(Some(RunAs { uid, gid }))
}

/// A private cluster: where it lives and how to reach it.
#[derive(Debug)]
pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    log: PathBuf,
    run_as: Option<RunAs>,
    /// Set for test clusters, whose postmaster is our child.
    child: Option<Child>,
}

impl PrivatePostgres {
    /// `serve`'s cluster: create it under `root` on first use, start it unless
    /// it is already running (a hub killed with SIGKILL leaves it up), and
    /// make sure the `audotics` database exists.
    pub async fn ensure_started(root: &Path) -> Result<PrivatePostgres, PrivateError> {
        let root = root.to_owned();
        tokio::task::spawn_blocking(move || Self::ensure_started_blocking(&root))
            .await
            .map_err(|e| PrivateError::Step {
                step: "start cluster",
                detail: e.to_string(),
            })?
    }

    fn ensure_started_blocking(root: &Path) -> Result<PrivatePostgres, PrivateError> {
        let cluster = Self::prepare(root)?;
        if !cluster.data.join("PG_VERSION").exists() {
            cluster.initdb()?;
        }
        if !cluster.is_running() {
            // A stale pid file from a crash is handled by pg_ctl itself.
            let opts: Vec<String> = cluster
                .server_options(false)
                .into_iter()
                .map(|(flag, val)| format!("{flag} '{val}'"))
                .collect();
            cluster.run(
                "pg_ctl start",
                cluster
                    .cmd("pg_ctl")
                    .arg("start")
                    .arg("-w")
                    .arg("-t")
                    .arg("60")
                    .arg("-D")
                    .arg(&cluster.data)
                    .arg("-l")
                    .arg(&cluster.log)
                    .arg("-o")
                    .arg(opts.join(" ")),
            )?;
        }
        Ok(cluster)
    }

    /// A throwaway cluster for tests: a fresh folder under `root`, tuned for
    /// speed (no fsync: the tests kill the hub, never the database), its
    /// postmaster our child so it dies with this process.
    pub fn start_ephemeral(root: &Path) -> Result<PrivatePostgres, PrivateError> {
        let mut cluster = Self::prepare(root)?;
        cluster.initdb()?;
        let mut cmd = cluster.cmd("postgres");
        cmd.arg("-D").arg(&cluster.data);
        for (flag, val) in cluster.server_options(true) {
            cmd.arg(flag).arg(val);
        }
        let log = std::fs::File::create(&cluster.log).map_err(io_err(&cluster.log))?;
        if let Some(RunAs { uid, gid }) = cluster.run_as {
            // SAFETY: fchown on a file we just created.
            unsafe {
                use std::os::fd::AsRawFd;
                libc::fchown(log.as_raw_fd(), uid, gid);
            }
        }
        cmd.stdout(Stdio::null()).stderr(log);
        // SAFETY: prctl is async-signal-safe; it asks the kernel to stop the
        // postmaster (fast shutdown) when the thread that spawned it exits.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(io_err(&cluster.bin))?;
        cluster.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !cluster.socket_dir.join(format!(".s.PGSQL.{PORT}")).exists() {
            if let Some(Ok(Some(status))) = cluster.child.as_mut().map(Child::try_wait) {
                return Err(PrivateError::Step {
                    step: "postgres",
                    detail: format!("exited with {status}; see {}", cluster.log.display()),
                });
            }
            if Instant::now() > deadline {
                return Err(PrivateError::Step {
                    step: "postgres",
                    detail: format!("socket did not appear; see {}", cluster.log.display()),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The socket appears while the server is still starting up: wait
        // until it accepts connections.
        while !cluster.accepts_connections() {
            if Instant::now() > deadline {
                return Err(PrivateError::Step {
                    step: "postgres",
                    detail: format!("not ready in time; see {}", cluster.log.display()),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(cluster)
    }

    fn prepare(root: &Path) -> Result<PrivatePostgres, PrivateError> {
        let bin = find_bin_dir()?;
        let run_as = run_as()?;
        std::fs::create_dir_all(root).map_err(io_err(root))?;
        let root = std::fs::canonicalize(root).map_err(io_err(root))?;
        let cluster = PrivatePostgres {
            bin,
            data: root.join("data"),
            socket_dir: root.join("run"),
            log: root.join("postgres.log"),
            run_as,
            child: None,
        };
        std::fs::create_dir_all(&cluster.socket_dir).map_err(io_err(&cluster.socket_dir))?;
        if let Some(who) = run_as {
            grant_traverse(&root, who)?;
            chown_tree(&root, who)?;
        }
        Ok(cluster)
    }

    fn initdb(&self) -> Result<(), PrivateError> {
        self.run(
            "initdb",
            self.cmd("initdb")
                .arg("-D")
                .arg(&self.data)
                .arg("-U")
                .arg(SUPERUSER)
                .arg("--auth=trust")
                .arg("--encoding=UTF8")
                .arg("--no-locale")
                .arg("--no-instructions"),
        )?;
        // The socket is in a folder only the cluster's owner (and root) may
        // enter, so trust authentication does not open it to other users.
        std::fs::set_permissions(&self.socket_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(&self.socket_dir))?;
        // Create the application database in single-user mode, before any
        // server runs, so no client library is needed here.
        let mut single = self.cmd("postgres");
        single
            .arg("--single")
            .arg("-D")
            .arg(&self.data)
            .arg("-j")
            .arg("postgres")
            .stdin(Stdio::piped());
        let mut child = single
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io_err(&self.bin))?;
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("piped");
            writeln!(stdin, "CREATE DATABASE {SUPERUSER};").map_err(io_err(&self.data))?;
        }
        let out = child.wait_with_output().map_err(io_err(&self.bin))?;
        if !out.status.success() {
            return Err(PrivateError::Step {
                step: "create database",
                detail: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(())
    }

    /// Server settings as (flag, value) pairs: a Unix socket in our own
    /// folder, no TCP. Test clusters trade crash safety for speed.
    fn server_options(&self, ephemeral: bool) -> Vec<(&'static str, String)> {
        let mut o = vec![
            ("-p", PORT.to_string()),
            ("-k", self.socket_dir.display().to_string()),
            ("-c", "listen_addresses=".to_owned()),
            ("-c", "unix_socket_permissions=0700".to_owned()),
            ("-c", "max_connections=300".to_owned()),
        ];
        // WAL volume is the cost of the hub's appends: after a checkpoint the
        // first change to each index page logs the whole page. Checkpoint
        // less often and compress those page images. Durability is unchanged
        // (fsync and synchronous_commit stay on).
        o.push(("-c", "wal_compression=on".to_owned()));
        o.push(("-c", "checkpoint_timeout=15min".to_owned()));
        if !ephemeral {
            o.push(("-c", "max_wal_size=2GB".to_owned()));
        }
        // The hub's working set lives in memory: an index probe costs about
        // what a sequential page does. With the default (4) a group commit
        // of a few hundred ops hashes or scans the whole queue table instead
        // of probing it by key.
        o.push(("-c", "random_page_cost=1.1".to_owned()));
        if ephemeral {
            o.push(("-c", "fsync=off".to_owned()));
            o.push(("-c", "full_page_writes=off".to_owned()));
            // Each test database is a copy of the template written whole into
            // the WAL (~7 MB): checkpoint often enough that a test process's
            // hundreds of them do not keep gigabytes of WAL on disk.
            o.push(("-c", "max_wal_size=256MB".to_owned()));
            o.push(("-c", "min_wal_size=32MB".to_owned()));
        }
        o
    }

    /// `pg_isready` on our socket.
    fn accepts_connections(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .arg("-q")
            .arg("-h")
            .arg(&self.socket_dir)
            .arg("-p")
            .arg(PORT.to_string())
            .arg("-U")
            .arg(SUPERUSER)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    fn is_running(&self) -> bool {
        self.cmd("pg_ctl")
            .arg("status")
            .arg("-D")
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    fn cmd(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        if let Some(RunAs { uid, gid }) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        // initdb/pg_ctl look at the working directory; ours may be unreadable
        // to the postgres user.
        cmd.current_dir(&self.socket_dir);
        cmd.env_remove("PGDATA").env("LC_ALL", "C");
        cmd
    }

    fn run(&self, step: &'static str, cmd: &mut Command) -> Result<(), PrivateError> {
        let out = cmd.output().map_err(io_err(&self.bin))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(PrivateError::Step {
                step,
                detail: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            })
        }
    }

    /// Connection URL of database `db` in this cluster (over its Unix socket).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost:{PORT}/{db}?host={}",
            self.socket_dir.display()
        )
    }

    /// Stop the server (fast shutdown: open transactions roll back, committed
    /// data is safe) and wait for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child by pid.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGINT);
            }
            let _ = child.wait();
            return;
        }
        let _ = self
            .cmd("pg_ctl")
            .arg("stop")
            .arg("-m")
            .arg("fast")
            .arg("-w")
            .arg("-D")
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The postgres user must be able to walk down to its data folder. Where an
/// ancestor (e.g. a 0700 temp folder or /root) blocks it, add the search bit
/// for others on that folder only: it allows passing through, not listing.
fn grant_traverse(dir: &Path, who: RunAs) -> Result<(), PrivateError> {
    for anc in dir.ancestors().skip(1) {
        let meta = std::fs::metadata(anc).map_err(io_err(anc))?;
        let mode = meta.permissions().mode();
        use std::os::unix::fs::MetadataExt;
        let can = (meta.uid() == who.uid && mode & 0o100 != 0)
            || (meta.gid() == who.gid && mode & 0o010 != 0)
            || mode & 0o001 != 0;
        if !can {
            tracing::warn!(
                dir = %anc.display(),
                "adding o+x so the postgres user can reach the private cluster"
            );
            std::fs::set_permissions(anc, std::fs::Permissions::from_mode(mode | 0o001))
                .map_err(io_err(anc))?;
        }
    }
    Ok(())
}

fn chown_tree(dir: &Path, who: RunAs) -> Result<(), PrivateError> {
    std::os::unix::fs::chown(dir, Some(who.uid), Some(who.gid)).map_err(io_err(dir))?;
    if dir.is_dir() {
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let path = entry.map_err(io_err(dir))?.path();
            let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
            if !meta.file_type().is_symlink() {
                chown_tree(&path, who)?;
            }
        }
    }
    Ok(())
}
