//! Postgres access: the pool, the embedded migrations, the private cluster,
//! and one module per aggregate holding its SQL (bound parameters only).
//! Tables are Prisma's quoted PascalCase names with camelCase columns, plus
//! the hub's own `hub_*` tables.

pub mod commit;
pub mod guests;
pub mod joins;
pub mod log;
pub mod notify;
pub mod party;
pub mod private;
pub mod sessions;
pub mod tokens;
pub mod tracks;
pub mod users;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

pub use private::{PrivateError, PrivatePostgres};

/// What the hub's connections call themselves.
pub const APPLICATION_NAME: &str = "audotics-hub";

/// The migrations in `migrations/`, compiled into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A pool to `url`. Connections are checked out briefly by REST handlers and
/// the session actors' commits, so a small pool serves many sessions.
pub async fn connect(url: &str, size: u32) -> anyhow::Result<PgPool> {
    // The name tells the hub's triggers (`hub.session_changed`) that a write
    // is the hub's own, not the old app's.
    let opts: PgConnectOptions = url
        .parse::<PgConnectOptions>()?
        .application_name(APPLICATION_NAME);
    let pool = PgPoolOptions::new()
        .max_connections(size)
        .min_connections(1.min(size))
        .acquire_timeout(Duration::from_secs(5))
        // No ping round trip before every checkout: a broken connection shows
        // on first use anyway (a commit then resolves its outcome from the
        // session's commit counter), and the ping cost every commit ~0.1 ms
        // of latency and a Postgres wake-up.
        .test_before_acquire(false)
        .connect_with(opts)
        .await?;
    Ok(pool)
}

/// Bring the schema up to date. On a database the Prisma app already made,
/// this adopts its tables and only adds the hub's own.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Is `e` a unique violation of the constraint/index named `name`?
pub(crate) fn is_unique_violation(e: &sqlx::Error, name: &str) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("23505") && db.constraint() == Some(name))
}

/// Rows of many sessions, keyed by session id, gathered per session in
/// the order they came (what the batched loads of `hub::session::load`
/// read: one query for many sessions).
pub(crate) fn by_session<T, C: Default + Extend<T>>(
    rows: impl IntoIterator<Item = (String, T)>,
) -> std::collections::HashMap<String, C> {
    let mut of: std::collections::HashMap<String, C> = std::collections::HashMap::new();
    for (session, row) in rows {
        of.entry(session).or_default().extend(std::iter::once(row));
    }
    of
}

/// A new row id: a time-ordered UUID (v7), so the TEXT primary keys of the
/// tables the hub appends to (`PlaylistUpdate`, `TrackInteraction`, queue
/// entries) grow at the index's right edge instead of touching a random leaf
/// page (and writing it whole to the WAL after each checkpoint) per row.
pub(crate) fn new_id() -> String {
    new_uuid().to_string()
}

/// See [`new_id`].
pub(crate) fn new_uuid() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}
