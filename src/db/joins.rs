//! Join codes (`hub_join_code`): six characters a guest can read off a
//! screen or hear across a room, standing for one session's id. One per
//! session, made with the session (or on first request for one the old app
//! made), random, never reused; only an active session's code resolves.

use std::collections::HashMap;

use rand::Rng;
use sqlx::{PgConnection, PgExecutor};

use crate::error::{Error, Result};

/// The characters of a code: digits and upper-case letters without the
/// look-alikes (0/O, 1/I/L, 2/Z, 5/S, 8/B) and without vowels (A, E, U;
/// I and O are gone already), so no code spells a word. 22 characters,
/// 22^6 ≈ 113 million codes. Also the migration's CHECK.
pub const ALPHABET: &[u8; 22] = b"34679CDFGHJKMNPQRTVWXY";

/// Characters in a code.
pub const CODE_LEN: usize = 6;

/// Tries at a code nobody holds before giving up (each collides with a
/// probability of sessions-ever-made / 113 million).
const ATTEMPTS: usize = 16;

/// A fresh random code.
pub fn random_code() -> String {
    let mut rng = rand::thread_rng();
    (0..CODE_LEN)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The code a person typed, as stored: case-insensitive, spaces and dashes
/// ignored (`cdf-ghj` is `CDFGHJ`). `None` when it cannot be a code.
pub fn normalize(input: &str) -> Option<String> {
    if input.len() > 64 {
        return None;
    }
    let code: String = input
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// The session's code, making one when it has none: in the transaction
/// that creates a session, and for a session the old app made (or one made
/// before codes existed) when a member first asks. Safe against a concurrent call
/// for the same session: both answer the one code stored.
pub async fn ensure(conn: &mut PgConnection, session_id: &str) -> Result<String> {
    for _ in 0..ATTEMPTS {
        if let Some(code) = code_of(&mut *conn, session_id).await? {
            return Ok(code);
        }
        // DO NOTHING on either key: a taken code (try another) or a code
        // made for this session meanwhile (read it on the next round).
        let made: Option<String> = sqlx::query_scalar(
            "INSERT INTO hub_join_code (code, session_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING RETURNING code",
        )
        .bind(random_code())
        .bind(session_id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(code) = made {
            return Ok(code);
        }
    }
    Err(Error::Internal(anyhow::anyhow!(
        "no free join code after {ATTEMPTS} tries"
    )))
}

/// The session's code, if it has one.
pub async fn code_of(db: impl PgExecutor<'_>, session_id: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT code FROM hub_join_code WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(db)
            .await?,
    )
}

/// The codes of those of `session_ids` that are active and have one.
pub async fn active_codes(
    db: impl PgExecutor<'_>,
    session_ids: &[String],
) -> Result<HashMap<String, String>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        r#"SELECT c.session_id, c.code FROM hub_join_code c
           JOIN "GroupSession" s ON s."id" = c.session_id
           WHERE c.session_id = ANY($1) AND s."active""#,
    )
    .bind(session_ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}

/// The active session a (normalized) code stands for.
pub async fn resolve(db: impl PgExecutor<'_>, code: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        r#"SELECT c.session_id FROM hub_join_code c
           JOIN "GroupSession" s ON s."id" = c.session_id
           WHERE c.code = $1 AND s."active""#,
    )
    .bind(code)
    .fetch_optional(db)
    .await?)
}

/// How many members the session has.
pub async fn member_count(db: impl PgExecutor<'_>, session_id: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar(r#"SELECT count(*) FROM "_GroupSessionToUser" WHERE "A" = $1"#)
            .bind(session_id)
            .fetch_one(db)
            .await?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alphabet_has_no_look_alikes_vowels_or_repeats() {
        for c in b"0O1IL2Z5S8BAEU" {
            assert!(!ALPHABET.contains(c), "{}", *c as char);
        }
        let mut sorted = ALPHABET.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ALPHABET.len());
        assert!(ALPHABET
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
    }

    #[test]
    fn random_codes_are_six_alphabet_characters_and_normal() {
        for _ in 0..1000 {
            let c = random_code();
            assert_eq!(c.len(), CODE_LEN);
            assert_eq!(normalize(&c).as_deref(), Some(c.as_str()));
        }
    }

    #[test]
    fn normalizing_ignores_case_spaces_and_dashes() {
        assert_eq!(normalize("cdf-ghj").as_deref(), Some("CDFGHJ"));
        assert_eq!(normalize(" c d f g h j ").as_deref(), Some("CDFGHJ"));
        assert_eq!(normalize("34-67-9x").as_deref(), Some("34679X"));
        for bad in [
            "", "CDFGH", "CDFGHJK", "CDFGH0", "CDFGHO", "CDFGH\0", "ÇDFGHJ", "CDF_GH",
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }
}
