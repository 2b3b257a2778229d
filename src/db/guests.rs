//! Guest accounts (`hub_guest`): a user who joined with just a name. To the
//! old app a guest is a normal `"User"` — a UUID id, its name, no password,
//! and a synthetic email that no real address can equal — and the hub marks
//! it a guest until it claims the account with an email and password (the
//! same id, so its memberships and history stay its own).

use sqlx::{PgExecutor, PgPool};

use super::users::{UserRow, USER_COLUMNS};
use super::{is_unique_violation, new_id};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use audotics_protocol::model::User;

/// The domain of guests' synthetic emails. `.invalid` is reserved (RFC
/// 2606, 6761): no real mailbox has it, and registration refuses it.
pub const EMAIL_DOMAIN: &str = "guest.audotics.invalid";

/// The synthetic email of guest `id`: `guest-<id>@guest.audotics.invalid`.
pub fn email_for(id: &str) -> String {
    format!("guest-{id}@{EMAIL_DOMAIN}")
}

/// Whether `email` (lower-cased) is in the guests' domain, which no one may
/// register or claim.
pub fn is_guest_email(email: &str) -> bool {
    email
        .rsplit_once('@')
        .is_some_and(|(_, domain)| domain == EMAIL_DOMAIN)
}

/// A new guest named `name`: its `"User"` row and its guest mark, together.
pub async fn create(pool: &PgPool, name: &str) -> Result<User> {
    let id = new_id();
    let now = now_ms().naive_utc();
    let mut tx = pool.begin().await?;
    let row: UserRow = sqlx::query_as(&format!(
        r#"INSERT INTO "User" ("id", "email", "name", "password", "createdAt", "updatedAt")
           VALUES ($1, $2, $3, NULL, $4, $4)
           RETURNING {USER_COLUMNS}"#
    ))
    .bind(&id)
    .bind(email_for(&id))
    .bind(name)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO hub_guest (user_id, created_at) VALUES ($1, $2)")
        .bind(&id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row.into())
}

/// Whether user `id` is a guest.
pub async fn is_guest(db: impl PgExecutor<'_>, id: &str) -> Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM hub_guest WHERE user_id = $1)")
            .bind(id)
            .fetch_one(db)
            .await?,
    )
}

/// Turn guest `id` into an account that signs in with `email` and the
/// password whose hash is `password_hash`: both set on its `"User"` row
/// (and "updatedAt", as Prisma's `@updatedAt` would), the guest mark gone,
/// in one transaction. `Forbidden` when `id` is not a guest (any more),
/// `Conflict` when another account has the email.
pub async fn claim(pool: &PgPool, id: &str, email: &str, password_hash: &str) -> Result<User> {
    let mut tx = pool.begin().await?;
    // Locks the mark: of two claims at once, the second finds none.
    let was_guest = sqlx::query("DELETE FROM hub_guest WHERE user_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    if !was_guest {
        return Err(not_a_guest());
    }
    // Emails match case-insensitively, as at registration.
    let row: Option<UserRow> = sqlx::query_as(&format!(
        r#"UPDATE "User" SET "email" = $2, "password" = $3, "updatedAt" = $4
           WHERE "id" = $1
             AND NOT EXISTS (SELECT 1 FROM "User" o WHERE lower(o."email") = lower($2) AND o."id" <> $1)
           RETURNING {USER_COLUMNS}"#
    ))
    .bind(id)
    .bind(email)
    .bind(password_hash)
    .bind(now_ms().naive_utc())
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e, "User_email_key") {
            super::users::duplicate_email()
        } else {
            e.into()
        }
    })?;
    let row = row.ok_or_else(super::users::duplicate_email)?;
    tx.commit().await?;
    Ok(row.into())
}

/// The refusal of a claim by an account that is not a guest.
pub fn not_a_guest() -> Error {
    Error::Forbidden("only a guest account can be claimed: this one is registered already".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_emails_are_in_a_reserved_domain() {
        let e = email_for("0190a3c4-0000-7000-8000-000000000001");
        assert_eq!(
            e,
            "guest-0190a3c4-0000-7000-8000-000000000001@guest.audotics.invalid"
        );
        assert!(is_guest_email(&e));
        assert!(is_guest_email("me@guest.audotics.invalid"));
        assert!(!is_guest_email("me@audotics.dev"));
        assert!(!is_guest_email("guest.audotics.invalid@example.com"));
    }
}
