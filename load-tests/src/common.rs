//! Pieces every scenario shares: loopback-only addressing and source-address
//! spreading, the monotonic clock shared by all worker processes, the
//! cross-process latency ring (a small shared-memory file), cheap frame
//! scanning, and the mergeable result of one worker.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{bail, Context};
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// Nanoseconds on CLOCK_MONOTONIC: one clock for every process on the
/// machine, so a writer in one worker and a listener in another agree.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `host:port` of a loopback URL like `http://127.0.0.1:8080` or
/// `127.0.0.1:9090`. Anything that is not 127.0.0.0/8 is refused.
pub fn loopback_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .trim_start_matches("http://")
        .trim_start_matches("ws://")
        .trim_end_matches('/');
    let hostport = rest.split('/').next().unwrap_or(rest);
    let addr: SocketAddr = match hostport.parse() {
        Ok(a) => a,
        Err(_) => hostport
            .to_socket_addrs()
            .with_context(|| format!("resolving {hostport}"))?
            .find(|a| a.is_ipv4())
            .with_context(|| format!("no IPv4 address for {hostport}"))?,
    };
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => Ok(addr),
        _ => bail!("{addr} is not a 127.0.0.0/8 address: this generator only targets loopback"),
    }
}

/// A comma-separated list of loopback servers (`--floor a,b,c`).
pub fn loopback_addrs(list: &str) -> anyhow::Result<Vec<SocketAddr>> {
    list.split(',')
        .filter(|a| !a.trim().is_empty())
        .map(|a| loopback_addr(a.trim()))
        .collect::<anyhow::Result<Vec<_>>>()
        .and_then(|v| {
            anyhow::ensure!(!v.is_empty(), "no server address given");
            Ok(v)
        })
}

/// Source address for the connection with global index `g`: spread over
/// `n` addresses 127.0.0.1, 127.0.0.2, … (None when n <= 1: let the kernel
/// choose).
pub fn source_ip(g: usize, n: usize) -> Option<Ipv4Addr> {
    if n <= 1 {
        return None;
    }
    Some(Ipv4Addr::new(127, 0, 0, 1 + (g % n) as u8))
}

pub fn client_config() -> WebSocketConfig {
    // Small buffers: the generator holds tens of thousands of sockets.
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20))
}

/// Open a WebSocket to `dst` (path `path`), optionally from `src`.
pub async fn ws_connect(dst: SocketAddr, path: &str, src: Option<Ipv4Addr>) -> anyhow::Result<Ws> {
    let sock = TcpSocket::new_v4().context("socket")?;
    if let Some(ip) = src {
        // Pick the port at connect() time from the full 4-tuple, so each
        // source address is not capped at one ephemeral range overall.
        let one: libc::c_int = 1;
        // SAFETY: setsockopt on a socket we own, with a c_int option.
        unsafe {
            use std::os::fd::AsRawFd;
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                &one as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        sock.bind(SocketAddr::new(IpAddr::V4(ip), 0))
            .with_context(|| format!("bind {ip}"))?;
    }
    let stream = tokio::time::timeout(Duration::from_secs(10), sock.connect(dst))
        .await
        .context("tcp connect timed out")?
        .map_err(|e| anyhow::anyhow!("tcp connect: {}", io_kind(&e)))?;
    let _ = stream.set_nodelay(true);
    let url = format!("ws://{dst}{path}");
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::client_async_with_config(url, stream, Some(client_config())),
    )
    .await
    .context("websocket handshake timed out")?
    .map_err(|e| match e {
        tokio_tungstenite::tungstenite::Error::Http(r) => {
            anyhow::anyhow!("http {}", r.status().as_u16())
        }
        e => anyhow::anyhow!("handshake: {e}"),
    })?;
    Ok(ws)
}

fn io_kind(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EMFILE) => "EMFILE (open files limit)".into(),
        Some(libc::EADDRNOTAVAIL) => "EADDRNOTAVAIL (out of source ports)".into(),
        Some(libc::ECONNREFUSED) => "ECONNREFUSED".into(),
        _ => e.kind().to_string(),
    }
}

/// Raise this process's soft open-files limit to the hard one; returns it.
pub fn raise_nofile() -> u64 {
    // SAFETY: plain getrlimit/setrlimit on our own process.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim = want;
            }
        }
        lim.rlim_cur
    }
}

// ---------------------------------------------------------------------------
// Latency ring: per stream (a session, or a floor writer), the send time of
// each version, in a MAP_SHARED file every worker maps. A writer stores
// (version, send_ns) when it learns the version; a listener that received
// version v at t looks the slot up (now or a little later) to get t - send.

pub const RING: usize = 512;

pub struct Ring {
    ptr: *mut AtomicU64,
    slots: usize,
    len: usize,
}

// SAFETY: the mapping is only accessed through atomics.
unsafe impl Send for Ring {}
unsafe impl Sync for Ring {}

pub enum Lookup {
    Sent(u64),
    NotYet,
    Lost,
}

impl Ring {
    pub fn create(path: &Path, streams: usize) -> anyhow::Result<()> {
        let f = std::fs::File::create(path)?;
        f.set_len((streams.max(1) * RING * 16) as u64)?;
        Ok(())
    }

    pub fn open(path: &Path, streams: usize) -> anyhow::Result<Ring> {
        use std::os::fd::AsRawFd;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        let len = streams.max(1) * RING * 16;
        // SAFETY: mapping a file we sized; unmapped in Drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            bail!(
                "mmap {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(Ring {
            ptr: p as *mut AtomicU64,
            slots: streams.max(1) * RING,
            len,
        })
    }

    fn slot(&self, stream: usize, v: i64) -> (&AtomicU64, &AtomicU64) {
        let i = (stream * RING + (v as usize % RING)) % self.slots;
        // SAFETY: i < slots; each slot is two u64s inside the mapping.
        unsafe { (&*self.ptr.add(2 * i), &*self.ptr.add(2 * i + 1)) }
    }

    pub fn store(&self, stream: usize, v: i64, sent_ns: u64) {
        let (ver, t) = self.slot(stream, v);
        ver.store(0, Ordering::Release);
        t.store(sent_ns, Ordering::Release);
        ver.store(v as u64, Ordering::Release);
    }

    pub fn lookup(&self, stream: usize, v: i64) -> Lookup {
        let (ver, t) = self.slot(stream, v);
        let seen = ver.load(Ordering::Acquire);
        if seen == v as u64 {
            let sent = t.load(Ordering::Acquire);
            if ver.load(Ordering::Acquire) == v as u64 {
                return Lookup::Sent(sent);
            }
            return Lookup::NotYet;
        }
        if seen > v as u64 {
            Lookup::Lost
        } else {
            Lookup::NotYet
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmapping what `open` mapped.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

// ---------------------------------------------------------------------------
// Frame scanning: listeners only need the type and version of a frame, so
// they look for them instead of decoding the whole JSON (the generator
// shares two cores with the hub and Postgres).

pub fn frame_type(s: &str) -> &str {
    let Some(rest) = s.strip_prefix(r#"{"type":""#) else {
        return "";
    };
    rest.split('"').next().unwrap_or("")
}

/// The integer after `"key":` (first occurrence).
pub fn int_field(s: &str, key: &str) -> Option<i64> {
    let pat_start = s.find(key)?;
    let rest = &s[pat_start + key.len()..];
    let rest = rest.strip_prefix("\":")?;
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

// ---------------------------------------------------------------------------
// Histograms (microseconds) and a worker's mergeable result.

pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds")
}

pub fn hist_to_b64(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut buf)
        .expect("serialize histogram");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

pub fn hist_from_b64(s: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s)?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut Cursor::new(bytes))
        .map_err(|e| anyhow::anyhow!("histogram: {e:?}"))?;
    Ok(h)
}

/// What one worker measured; the parent adds these up.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkerResult {
    pub connect_start_ns: u64,
    pub connect_end_ns: u64,
    pub window_start_ns: u64,
    pub window_end_ns: u64,
    pub listeners_joined: u64,
    pub writers_joined: u64,
    pub join_failures: u64,
    pub deliveries: u64,
    pub deliveries_in_window: u64,
    pub gaps: u64,
    pub missing_versions: u64,
    pub out_of_order: u64,
    pub ops_sent: u64,
    pub ops_acked: u64,
    pub ops_acked_in_window: u64,
    pub throttled_ticks: u64,
    pub rejoins: u64,
    pub resumed: u64,
    pub snapshots_on_rejoin: u64,
    pub latency_unmatched: u64,
    pub errors: BTreeMap<String, u64>,
    pub closes: BTreeMap<String, u64>,
    pub hist_latency: String,
    pub hist_ack: String,
    pub hist_join: String,
    pub worker_rss_kib: u64,
    /// Joins and failures per server, in the order of the setup's `dsts`.
    #[serde(default)]
    pub per_server: Vec<ServerCount>,
}

/// What one worker's connections did through one server. Rejoins during
/// `churn` are not joins here (as in `listeners_joined`); their failures
/// are failures (as in `join_failures`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerCount {
    pub listeners_joined: u64,
    pub writers_joined: u64,
    pub failures: u64,
}

/// VmRSS (KiB) of a process from /proc/PID/status.
pub fn rss_kib(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// (busy, total) jiffies of the whole machine from /proc/stat.
pub fn machine_ticks() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_frames() {
        let f = r#"{"type":"update","version":42,"change":{"op":"add"}}"#;
        assert_eq!(frame_type(f), "update");
        assert_eq!(int_field(f, "\"version"), Some(42));
        assert_eq!(
            int_field(r#"{"type":"update","version":7,"w":3}"#, "\"w"),
            Some(3)
        );
        assert_eq!(frame_type("[1]"), "");
    }

    #[test]
    fn refuses_non_loopback() {
        assert!(loopback_addr("http://127.0.0.1:8080").is_ok());
        assert!(loopback_addr("127.0.0.2:9").is_ok());
        assert!(loopback_addr("http://10.0.0.1:80").is_err());
        let many = loopback_addrs("127.0.0.1:9090, 127.0.0.1:9091,").unwrap();
        assert_eq!(many.len(), 2);
        assert_eq!(many[1].port(), 9091);
        assert!(loopback_addrs("127.0.0.1:9090,10.0.0.1:9091").is_err());
        assert!(loopback_addrs(" ,").is_err());
    }

    #[test]
    fn histogram_round_trip() {
        let mut h = new_hist();
        h.record(5).unwrap();
        h.record(500).unwrap();
        let back = hist_from_b64(&hist_to_b64(&h)).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back.max(), h.max());
    }
}
