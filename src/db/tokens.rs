//! Bearer tokens (`hub_auth_token`): only the SHA-256 of a token is stored.

use sqlx::PgPool;

use super::users::{UserRow, USER_COLUMNS};
use crate::auth;
use crate::error::Result;
use audotics_protocol::model::User;

/// Issue a new token for `user_id`; returns the token itself (shown once).
pub async fn issue(pool: &PgPool, user_id: &str) -> Result<String> {
    let (token, hash) = auth::new_token();
    sqlx::query("INSERT INTO hub_auth_token (token_hash, user_id) VALUES ($1, $2)")
        .bind(hash)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(token)
}

/// The user a presented token belongs to, if any.
pub async fn authenticate(pool: &PgPool, token: &str) -> Result<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        r#"SELECT {USER_COLUMNS} FROM hub_auth_token t JOIN "User" ON "User"."id" = t.user_id
           WHERE t.token_hash = $1"#
    ))
    .bind(auth::token_hash(token))
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Into::into))
}
