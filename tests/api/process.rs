//! The hub binary as a child process (restart, crash and log tests): started
//! on a database, its stderr kept line by line, stopped by signal.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use audotics_client::Rest;

/// The hub binary, running on a database.
pub struct HubProcess {
    child: Child,
    pub rest: Rest,
    pub ws: String,
    /// Every line it wrote to stderr so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl HubProcess {
    /// `serve` on `db_url` at a free loopback port, logging at `info`.
    pub fn start(db_url: &str) -> HubProcess {
        Self::start_with(db_url, "info", &[])
    }

    /// `serve` on `db_url` with `RUST_LOG=log` and `extra` flags.
    pub fn start_with(db_url: &str, log: &str, extra: &[&str]) -> HubProcess {
        Self::start_at("127.0.0.1:0", db_url, log, extra)
    }

    /// [`HubProcess::start_with`], listening on `bind`.
    pub fn start_at(bind: &str, db_url: &str, log: &str, extra: &[&str]) -> HubProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_audotics-hub"))
            .args(["serve", "--bind", bind, "--database-url", db_url])
            .args(extra)
            .env("RUST_LOG", log)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the hub binary");
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = lines.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .split("addr=")
                    .nth(1)
                    .filter(|_| line.contains("listening"))
                {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr.trim().to_owned());
                    }
                }
                kept.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("hub printed its address");
        let rest = Rest::new(format!("http://{addr}"));
        HubProcess {
            child,
            ws: rest.ws_url(),
            rest,
            log: lines,
        }
    }

    pub fn kill9(&mut self) {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
