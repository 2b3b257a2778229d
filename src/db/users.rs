//! `"User"` and `"UserPreference"` rows. Reads list their columns, and never
//! the password or Spotify token columns unless they are needed to log in.

use chrono::NaiveDateTime;
use sqlx::PgPool;

use super::{is_unique_violation, new_id};
use crate::clock::{now_ms, utc};
use crate::error::{Error, Result};
use audotics_protocol::model::{Preferences, User};

#[derive(sqlx::FromRow)]
#[sqlx(rename_all = "camelCase")]
pub(crate) struct UserRow {
    id: String,
    email: String,
    name: String,
    avatar: Option<String>,
    spotify_id: Option<String>,
    created_at: NaiveDateTime,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> User {
        User {
            id: r.id,
            email: r.email,
            name: r.name,
            avatar: r.avatar,
            spotify_id: r.spotify_id,
            created_at: utc(r.created_at),
        }
    }
}

/// The public columns, for every query that returns a `User`.
pub(crate) const USER_COLUMNS: &str = r#""User"."id", "User"."email", "User"."name", "User"."avatar", "User"."spotifyId", "User"."createdAt""#;

pub async fn create(pool: &PgPool, email: &str, name: &str, password_hash: &str) -> Result<User> {
    let now = now_ms().naive_utc();
    // The hub stores emails lower-cased, but the old app may have stored one
    // with capitals: that is the same account, so compare case-insensitively
    // (the unique index alone only catches an exact match).
    let row: Option<UserRow> = sqlx::query_as(&format!(
        r#"INSERT INTO "User" ("id", "email", "name", "password", "createdAt", "updatedAt")
           SELECT $1, $2, $3, $4, $5, $5
           WHERE NOT EXISTS (SELECT 1 FROM "User" WHERE lower("email") = lower($2))
           RETURNING {USER_COLUMNS}"#
    ))
    .bind(new_id())
    .bind(email)
    .bind(name)
    .bind(password_hash)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(|e| {
        if is_unique_violation(&e, "User_email_key") {
            duplicate_email()
        } else {
            e.into()
        }
    })?;
    row.map(Into::into).ok_or_else(duplicate_email)
}

pub(crate) fn duplicate_email() -> Error {
    Error::Conflict("an account with this email already exists".into())
}

/// The user id and stored password hash for `email`, to log in.
pub async fn credentials(pool: &PgPool, email: &str) -> Result<Option<(String, Option<String>)>> {
    Ok(
        sqlx::query_as(r#"SELECT "id", "password" FROM "User" WHERE lower("email") = lower($1)"#)
            .bind(email)
            .fetch_optional(pool)
            .await?,
    )
}

/// Replace user `id`'s password hash `old` by `new` (a re-hash at sign-in),
/// setting "updatedAt" as Prisma's `@updatedAt` would. Nothing changes if
/// the stored hash is no longer `old` (the password was changed meanwhile,
/// e.g. by the old app): true when the row was updated.
pub async fn replace_password_hash(pool: &PgPool, id: &str, old: &str, new: &str) -> Result<bool> {
    let done = sqlx::query(
        r#"UPDATE "User" SET "password" = $3, "updatedAt" = $4
           WHERE "id" = $1 AND "password" = $2"#,
    )
    .bind(id)
    .bind(old)
    .bind(new)
    .bind(now_ms().naive_utc())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get(pool: &PgPool, id: &str) -> Result<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        r#"SELECT {USER_COLUMNS} FROM "User" WHERE "id" = $1"#
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Into::into))
}

#[derive(sqlx::FromRow)]
#[sqlx(rename_all = "camelCase")]
struct PreferenceRow {
    top_tracks: Option<Vec<String>>,
    top_artists: Option<Vec<String>>,
    genres: Option<Vec<String>>,
    features: Option<serde_json::Value>,
    last_updated: NaiveDateTime,
}

impl From<PreferenceRow> for Preferences {
    fn from(r: PreferenceRow) -> Preferences {
        Preferences {
            top_tracks: r.top_tracks.unwrap_or_default(),
            top_artists: r.top_artists.unwrap_or_default(),
            genres: r.genres.unwrap_or_default(),
            features: r.features,
            last_updated: utc(r.last_updated),
        }
    }
}

const PREFERENCE_COLUMNS: &str =
    r#""topTracks", "topArtists", "genres", "features", "lastUpdated""#;

pub async fn preferences(pool: &PgPool, user_id: &str) -> Result<Option<Preferences>> {
    let row: Option<PreferenceRow> = sqlx::query_as(&format!(
        r#"SELECT {PREFERENCE_COLUMNS} FROM "UserPreference" WHERE "userId" = $1"#
    ))
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Into::into))
}

/// Replace the user's preferences (one row per user: `UserPreference_userId_key`).
pub async fn set_preferences(
    pool: &PgPool,
    user_id: &str,
    top_tracks: &[String],
    top_artists: &[String],
    genres: &[String],
    features: Option<&serde_json::Value>,
) -> Result<Preferences> {
    let row: PreferenceRow = sqlx::query_as(&format!(
        r#"INSERT INTO "UserPreference" ("id", "userId", "topTracks", "topArtists", "genres", "features", "lastUpdated")
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT ("userId") DO UPDATE SET "topTracks" = EXCLUDED."topTracks",
               "topArtists" = EXCLUDED."topArtists", "genres" = EXCLUDED."genres",
               "features" = EXCLUDED."features", "lastUpdated" = EXCLUDED."lastUpdated"
           RETURNING {PREFERENCE_COLUMNS}"#
    ))
    .bind(new_id())
    .bind(user_id)
    .bind(top_tracks)
    .bind(top_artists)
    .bind(genres)
    .bind(features)
    .bind(now_ms().naive_utc())
    .fetch_one(pool)
    .await?;
    Ok(row.into())
}
