//! Postgres notifications (LISTEN/NOTIFY) on one connection: how a hub hears
//! of changes made elsewhere — by another hub or by the old app — through
//! triggers. Notifications sent while the connection is down are lost, so
//! after a reconnection the caller is told to catch up by reading state.

use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{Executor, PgPool};
use tokio_util::sync::CancellationToken;

/// What the listener hands on.
#[derive(Debug)]
pub enum Heard {
    Note {
        channel: String,
        payload: String,
    },
    /// The connection was lost and is back: notifications may have been
    /// missed; re-read whatever they would have said.
    Reconnected,
}

/// Listen on `channels` until `stop` or the pool closes, handing each
/// notification (and each reconnection) to `on`.
pub async fn listen(
    pool: PgPool,
    channels: &[&str],
    stop: CancellationToken,
    mut on: impl FnMut(Heard),
) {
    let mut listener = loop {
        let attempt = async {
            let mut l = PgListener::connect_with(&pool).await?;
            l.listen_all(channels.iter().copied()).await?;
            Ok::<_, sqlx::Error>(l)
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            r = attempt => match r {
                Ok(l) => break l,
                Err(e) if pool.is_closed() => {
                    tracing::debug!(error = %e, "notifications: pool closed");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "notifications: cannot listen; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
        }
    };
    let mut delay = Duration::from_millis(100);
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => return,
            n = listener.try_recv() => n,
        };
        match next {
            Ok(Some(n)) => {
                delay = Duration::from_millis(100);
                on(Heard::Note {
                    channel: n.channel().to_owned(),
                    payload: n.payload().to_owned(),
                });
            }
            // Lost and already re-established (with its LISTENs).
            Ok(None) => on(Heard::Reconnected),
            Err(_) if pool.is_closed() => return,
            Err(e) => {
                tracing::warn!(error = %e, "notifications: connection lost; reconnecting");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(2));
                // Reconnect (and LISTEN again) now, so the catch-up below
                // is not left waiting for the next notification.
                if (&mut listener).execute("SELECT 1").await.is_ok() {
                    on(Heard::Reconnected);
                }
            }
        }
    }
}
