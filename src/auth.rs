//! Passwords and bearer tokens. Passwords are argon2id PHC strings (hashed on
//! the blocking pool: it is deliberately slow). Tokens are 256 random bits
//! handed to the client once; only their SHA-256 is stored, so a database
//! leak does not leak sessions.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// Prefix that makes a leaked token easy to recognise in a scan.
const TOKEN_PREFIX: &str = "aht_";

/// Argon2 runs at most this many at once (one per core). Each hash holds
/// 19 MiB; unbounded, a burst of sign-ups ran dozens in parallel on the
/// blocking pool, and the allocator kept that peak (1.5 GiB RSS after 100
/// registrations) for the life of the process. Waiting here is async.
static HASHERS: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// Run one argon2 computation on the blocking pool, within `HASHERS`.
async fn argon2_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let _permit = HASHERS
        .acquire()
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(e.into()))
}

pub async fn hash_password(password: String) -> Result<String> {
    argon2_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(anyhow::anyhow!("argon2: {e}")))
    })
    .await?
}

/// Constant-time check of `password` against a stored PHC string; a hash we
/// cannot parse (e.g. the old app's format) simply does not match.
pub async fn verify_password(password: String, stored: String) -> Result<bool> {
    argon2_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
}

/// A fresh bearer token (to hand out) and its hash (to store).
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn password_roundtrip() {
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), h.clone())
            .await
            .unwrap());
        assert!(!verify_password("wrong horse".into(), h).await.unwrap());
        assert!(!verify_password("x".into(), "$2b$10$notargon".into())
            .await
            .unwrap());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = new_token();
        let (b, hb) = new_token();
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert_eq!(token_hash(&a), ha);
        assert_eq!(ha.len(), 64);
        assert!(!ha.contains(&a));
    }
}
