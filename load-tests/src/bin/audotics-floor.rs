//! `audotics-floor`: the floor the hub is compared against — a minimal
//! tokio-tungstenite broadcast server with no logic. A client's first text
//! frame `{"type":"join","sessionId":..}` puts it in that session's room;
//! every later text frame is broadcast verbatim (one shared frame) to every
//! member of the room, and the sender gets `{"type":"ack"}`. No persistence,
//! no validation, no ordering beyond what one room lock gives.
//!
//! Each connection has a bounded outbound channel like the hub's outbox, so
//! the comparison is like for like: a member more than 1,024 frames behind is
//! dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use clap::Parser;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

#[derive(Parser)]
#[command(
    name = "audotics-floor",
    about = "Minimal WebSocket broadcast server: the floor the hub's fan-out is compared against"
)]
struct Cli {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    bind: SocketAddr,
    /// Frames a member may be behind before it is dropped (like the hub's 4008).
    #[arg(long, default_value_t = 1024)]
    outbound_frames: usize,
}

type Room = Vec<(u64, mpsc::Sender<Utf8Bytes>)>;

#[derive(Default)]
struct Rooms {
    rooms: Mutex<HashMap<String, Arc<Mutex<Room>>>>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    anyhow::ensure!(
        cli.bind.ip().is_loopback(),
        "the floor only listens on loopback"
    );
    raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(cli))
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let listener = TcpListener::bind(cli.bind).await?;
    eprintln!("audotics-floor listening on {}", listener.local_addr()?);
    let rooms = Arc::new(Rooms::default());
    let mut next_id = 0u64;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            a = listener.accept() => match a {
                Ok((sock, _)) => {
                    next_id += 1;
                    let _ = sock.set_nodelay(true);
                    tokio::spawn(conn(sock, next_id, rooms.clone(), cli.outbound_frames));
                }
                Err(e) => {
                    // EMFILE and friends: say so, back off, keep serving.
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = term.recv() => { eprintln!("SIGTERM: exiting"); return Ok(()); }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024))
}

async fn conn(sock: TcpStream, id: u64, rooms: Arc<Rooms>, outbound: usize) {
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(sock, Some(ws_config())).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(outbound);
    let writer = tokio::spawn(async move {
        while let Some(f) = rx.recv().await {
            if sink.feed(Message::Text(f)).await.is_err() {
                return;
            }
            let mut n = 0;
            while n < 64 {
                match rx.try_recv() {
                    Ok(f) => {
                        if sink.feed(Message::Text(f)).await.is_err() {
                            return;
                        }
                        n += 1;
                    }
                    Err(_) => break,
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let ack: Utf8Bytes = Utf8Bytes::from_static(r#"{"type":"ack"}"#);
    let mut room: Option<Arc<Mutex<Room>>> = None;
    while let Some(Ok(m)) = stream.next().await {
        let Message::Text(t) = m else {
            if matches!(m, Message::Close(_)) {
                break;
            }
            continue;
        };
        match &room {
            None => {
                let v: serde_json::Value = match serde_json::from_str(t.as_str()) {
                    Ok(v) => v,
                    Err(_) => break,
                };
                let Some(sid) = v.get("sessionId").and_then(|s| s.as_str()) else {
                    break;
                };
                let r = rooms
                    .rooms
                    .lock()
                    .unwrap()
                    .entry(sid.to_owned())
                    .or_default()
                    .clone();
                r.lock().unwrap().push((id, tx.clone()));
                let _ = tx.try_send(Utf8Bytes::from_static(r#"{"type":"joined"}"#));
                room = Some(r);
            }
            Some(r) => {
                // One shared frame for every member; a full member is dropped.
                let members = r.lock().unwrap();
                let mut slow = Vec::new();
                for (mid, m) in members.iter() {
                    if m.try_send(t.clone()).is_err() {
                        slow.push(*mid);
                    }
                }
                drop(members);
                if !slow.is_empty() {
                    r.lock().unwrap().retain(|(mid, _)| !slow.contains(mid));
                }
                let _ = tx.try_send(ack.clone());
            }
        }
    }
    if let Some(r) = room {
        r.lock().unwrap().retain(|(mid, _)| *mid != id);
    }
    drop(tx);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), writer).await;
}

fn raise_nofile() {
    // SAFETY: plain getrlimit/setrlimit on our own process.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            eprintln!("open files limit: {}", lim.rlim_cur);
        }
    }
}
