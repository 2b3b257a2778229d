//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`).
//! Colours only on a terminal, so log files and test harnesses read plain text.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Crates that log request bytes (tokens in `join` frames, `Authorization`
/// headers) at debug or trace: held at info whatever `RUST_LOG` says, so no
/// token reaches a log line at any level.
const WIRE_LOGGERS: [&str; 4] = ["tungstenite", "tokio_tungstenite", "hyper", "h2"];

pub fn init() {
    let mut filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    for krate in WIRE_LOGGERS {
        filter = filter.add_directive(format!("{krate}=info").parse().expect("a valid directive"));
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
