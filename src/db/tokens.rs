//! Bearer tokens (`hub_auth_token`): only the SHA-256 of a token is stored.
//! A token lives while it is used: one unused for the lifetime expires
//! (its last use is stamped at most once per [`touch_every`]). Deleting a
//! row — logout, revoke-all, the user deleted — notifies every hub
//! (`hub_token_revoked`), which closes the sockets that token opened.

use std::time::Duration;

use chrono::NaiveDateTime;
use sqlx::PgPool;

use super::users::{UserRow, USER_COLUMNS};
use crate::auth;
use crate::clock::now_ms;
use crate::error::Result;
use audotics_protocol::model::User;

/// The channel a revoked token's hash is announced on.
pub const REVOKED_CHANNEL: &str = "hub_token_revoked";

/// How stale a token's last-use stamp may get before it is rewritten (a
/// write per request would cost more than the expiry's precision is worth):
/// a 24th of the lifetime, at most an hour.
fn touch_every(lifetime: Duration) -> Duration {
    (lifetime / 24).min(Duration::from_secs(3600))
}

/// Issue a new token for `user_id`; returns the token itself (shown once).
pub async fn issue(pool: &PgPool, user_id: &str) -> Result<String> {
    let (token, hash) = auth::new_token();
    sqlx::query(
        "INSERT INTO hub_auth_token (token_hash, user_id, created_at, last_used_at) VALUES ($1, $2, $3, $3)",
    )
    .bind(hash)
    .bind(user_id)
    .bind(now_ms().naive_utc())
    .execute(pool)
    .await?;
    Ok(token)
}

/// The user a presented token belongs to, if the token is live (used within
/// `lifetime`); stamps its use.
pub async fn authenticate(pool: &PgPool, token: &str, lifetime: Duration) -> Result<Option<User>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: UserRow,
        last_used_at: NaiveDateTime,
    }
    let hash = auth::token_hash(token);
    let now = now_ms().naive_utc();
    let row: Option<Row> = sqlx::query_as(&format!(
        r#"SELECT {USER_COLUMNS}, t.last_used_at FROM hub_auth_token t JOIN "User" ON "User"."id" = t.user_id
           WHERE t.token_hash = $1"#
    ))
    .bind(&hash)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let idle = (now - row.last_used_at).to_std().unwrap_or_default();
    if idle >= lifetime {
        revoke(pool, &hash).await?;
        return Ok(None);
    }
    if idle >= touch_every(lifetime) {
        sqlx::query("UPDATE hub_auth_token SET last_used_at = $2 WHERE token_hash = $1")
            .bind(&hash)
            .bind(now)
            .execute(pool)
            .await?;
    }
    Ok(Some(row.user.into()))
}

/// Revoke one token by its hash.
pub async fn revoke(pool: &PgPool, hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM hub_auth_token WHERE token_hash = $1")
        .bind(hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// Revoke every token of a user; returns how many there were.
pub async fn revoke_all(pool: &PgPool, user_id: &str) -> Result<u64> {
    let done = sqlx::query("DELETE FROM hub_auth_token WHERE user_id = $1")
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// Which of `hashes` are still live tokens (to catch up on revocations
/// missed while the notification connection was down).
pub async fn live(pool: &PgPool, hashes: &[String]) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT token_hash FROM hub_auth_token WHERE token_hash = ANY($1)")
            .bind(hashes)
            .fetch_all(pool)
            .await?,
    )
}
