//! A real NATS server for cluster tests: Debian's `nats-server`, on a free
//! loopback port, with the payload limit `deploy/nats.conf` sets. One is
//! shared by the in-process cluster tests of a test process (each test's
//! cluster has its own subject prefix); fault tests start their own to stop
//! and restart it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The `nats-server` binary, or a clear message on how to install it.
pub fn binary() -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/bin"])
    {
        let p = PathBuf::from(dir).join("nats-server");
        if p.is_file() {
            return p;
        }
    }
    panic!("nats-server not found: install it with `sudo apt-get install -y nats-server` (tests/run-all does)");
}

pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    conf: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl NatsServer {
    pub fn start() -> NatsServer {
        let port = free_port();
        let conf =
            std::env::temp_dir().join(format!("audotics-nats-{}-{port}.conf", std::process::id()));
        std::fs::write(
            &conf,
            format!("listen: 127.0.0.1:{port}\nmax_payload: 8MB\nwrite_deadline: \"10s\"\n"),
        )
        .unwrap();
        let mut s = NatsServer {
            child: None,
            port,
            conf,
        };
        s.resume();
        s
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Start (again) on the same port.
    pub fn resume(&mut self) {
        let child = Command::new(binary())
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stop it (SIGKILL: the hubs' connections drop at once).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.conf);
    }
}

/// The NATS server this test process shares, started on first use.
pub fn shared_url() -> String {
    static SHARED: OnceLock<Mutex<NatsServer>> = OnceLock::new();
    extern "C" fn stop_shared() {
        if let Some(s) = SHARED.get() {
            if let Ok(mut s) = s.lock() {
                s.stop();
                // Statics are never dropped: remove the config here.
                let _ = std::fs::remove_file(&s.conf);
            }
        }
    }
    let s = SHARED.get_or_init(|| {
        // SAFETY: registering a plain extern "C" fn.
        unsafe { libc::atexit(stop_shared) };
        Mutex::new(NatsServer::start())
    });
    s.lock().unwrap().url()
}
