//! Passwords and bearer tokens.
//!
//! Passwords: sign-in accepts both kinds of hash found in `"User"."password"`,
//! bcrypt (`$2a$`, `$2b$`, `$2y$`: what the old NestJS app writes with node
//! `bcrypt.hash(password, 10)`) and argon2 PHC strings (what the hub wrote
//! before it wrote bcrypt). New hashes follow [`PasswordHash`], the operator's
//! policy (`serve --password-hash`, default bcrypt so that both apps can sign
//! in every account); see [`needs_rehash`] for what sign-in rewrites. Hashing
//! and checking are deliberately slow, so they run on the blocking pool.
//!
//! Tokens are 256 random bits handed to the client once; only their SHA-256
//! is stored, so a database leak does not leak sessions.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash as Phc, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;
use tokio::sync::Semaphore;

pub use crate::config::PasswordHash;
use crate::error::{Error, Result};

/// Prefix that makes a leaked token easy to recognise in a scan.
const TOKEN_PREFIX: &str = "aht_";

/// The bcrypt cost the hub writes: the old app's `bcrypt.hash(password, 10)`.
pub const BCRYPT_COST: u32 = 10;

/// Password hashes (argon2 or bcrypt) run at most this many at once (one per
/// core). Each argon2 hash holds 19 MiB; unbounded, a burst of sign-ups ran
/// dozens in parallel on the blocking pool, and the allocator kept that peak
/// (1.5 GiB RSS after 100 registrations) for the life of the process. bcrypt
/// needs little memory but as much CPU. Waiting here is async.
static HASHERS: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// Run one password hash computation on the blocking pool, within `HASHERS`.
async fn hasher_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let _permit = HASHERS
        .acquire()
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(e.into()))
}

/// What kind of hash a stored password is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashKind {
    /// `$2a$`, `$2b$` or `$2y$` (all three are the same algorithm today).
    /// `$2x$` (crypt_blowfish's marker for its old sign-extension bug) is not
    /// accepted: it is computed differently for non-ASCII passwords.
    Bcrypt,
    /// An argon2 PHC string (`$argon2id$…`; the hub only ever wrote argon2id).
    Argon2,
    /// Anything else: matches no password.
    Unknown,
}

/// The kind of `stored`, by its prefix.
pub fn hash_kind(stored: &str) -> HashKind {
    if ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
    {
        HashKind::Bcrypt
    } else if stored.starts_with("$argon2") {
        HashKind::Argon2
    } else {
        HashKind::Unknown
    }
}

/// A hash of `password` under the default policy ([`PasswordHash::default`]).
pub async fn hash_password(password: String) -> Result<String> {
    hash_password_as(password, PasswordHash::default()).await
}

/// A hash of `password` of the kind `policy` says.
///
/// bcrypt (cost 10, `$2b$`) uses only the first 72 bytes of the UTF-8
/// password and ignores the rest, exactly like node `bcrypt`, so that the
/// old app's `bcrypt.compare` agrees with the hub on every password.
pub async fn hash_password_as(password: String, policy: PasswordHash) -> Result<String> {
    hasher_blocking(move || match policy {
        PasswordHash::Bcrypt => bcrypt::hash(password.as_bytes(), BCRYPT_COST)
            .map_err(|e| Error::Internal(anyhow::anyhow!("bcrypt: {e}"))),
        PasswordHash::Argon2id => {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::Internal(anyhow::anyhow!("argon2: {e}")))
        }
    })
    .await?
}

/// Constant-time check of `password` against a stored bcrypt hash or argon2
/// PHC string. A hash of neither kind (or one that does not parse) matches
/// nothing; it still costs one bcrypt check, so its answer takes as long.
pub async fn verify_password(password: String, stored: String) -> Result<bool> {
    hasher_blocking(move || match hash_kind(&stored) {
        // Truncates at 72 bytes like node `bcrypt`; compares in constant time.
        HashKind::Bcrypt => bcrypt::verify(password.as_bytes(), &stored).unwrap_or(false),
        HashKind::Argon2 => Phc::new(&stored).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        }),
        HashKind::Unknown => {
            let _ = bcrypt::verify(password.as_bytes(), DUMMY_BCRYPT);
            false
        }
    })
    .await
}

/// Whether a stored hash that has just verified should be replaced by a
/// fresh hash of the policy's kind (the caller has the password only now).
///
/// - Under `Bcrypt`: an argon2 hash (written by the hub before bcrypt was
///   its policy, or under `Argon2id`) is rewritten, so the old app can sign
///   that account in from now on; so is a `$2y$` hash, which node `bcrypt`
///   refuses. `$2a$`/`$2b$` hashes are kept, whatever their cost.
/// - Under `Argon2id`: nothing is rewritten, bcrypt hashes included. They
///   still verify here, and the old app may still be signing those users in:
///   turning them into argon2id would lock each one out of the old app on
///   their next hub sign-in, without the user or the operator noticing. The
///   operator's choice of argon2id is taken to cover the accounts the hub
///   creates, not the old app's existing ones.
pub fn needs_rehash(stored: &str, policy: PasswordHash) -> bool {
    match (policy, hash_kind(stored)) {
        (PasswordHash::Bcrypt, HashKind::Argon2) => true,
        (PasswordHash::Bcrypt, HashKind::Bcrypt) => stored.starts_with("$2y$"),
        (PasswordHash::Bcrypt, HashKind::Unknown) | (PasswordHash::Argon2id, _) => false,
    }
}

/// A bcrypt hash (cost 10) of a random password nobody knows.
const DUMMY_BCRYPT: &str = "$2b$10$ZJE0TMrzI6STHKI4tJta3uaocR255L/RyoYZGZmPjG8Xtx92JLkIq";

/// A valid argon2id hash of a random password.
const DUMMY_ARGON2ID: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0X6cE7Y0w1mVY2cYbNQm0b2z9dZ2lJ2Kx2m7y0l7nqk";

/// A hash of the policy's kind (the kind most accounts have) that no
/// password matches: verifying against it when the email is unknown makes
/// both failures take the same time.
pub fn dummy_hash(policy: PasswordHash) -> &'static str {
    match policy {
        PasswordHash::Bcrypt => DUMMY_BCRYPT,
        PasswordHash::Argon2id => DUMMY_ARGON2ID,
    }
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

    /// Hashes made outside the hub, the way the old app makes them:
    /// `require('bcrypt').hashSync(password, 10)` with node `bcrypt` 6.0.0
    /// (the old app's library; same C core as its 5.1), and one with the
    /// pure-JS `bcryptjs` 3.0.3 (which also writes `$2b$`).
    const NODE_HASHES: [(&str, &str); 3] = [
        (
            "correct horse battery",
            "$2b$10$zyAWaPFJlTBrgMJ454DEXuWIR.MfjZD00YlNz8SOEJrXzyFy4dvny",
        ),
        (
            "pässwörd ünïcode 🎧 tune",
            "$2b$10$NjKU600f5G.Aqgqo1qNr3uXq8xrGJh0RSFO2eYCetvyP8tSkxXIB6",
        ),
        (
            "correct horse battery",
            "$2b$10$JUQmQNdaPzhuFwvUJqfyie7j0XtkeoeVGAQg3a2NcZhORcWQB.pqG",
        ),
    ];

    async fn verifies(password: &str, stored: &str) -> bool {
        verify_password(password.into(), stored.into())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn bcrypt_hashes_made_by_node_verify() {
        for (password, hash) in NODE_HASHES {
            assert_eq!(hash_kind(hash), HashKind::Bcrypt);
            assert!(verifies(password, hash).await, "{password:?} vs {hash}");
        }
        // The same hash under the older `$2a$` and PHP's `$2y$` markers (same
        // algorithm; node's `bcrypt.compare` accepts `$2a$` too).
        let (password, hash) = NODE_HASHES[2];
        for prefix in ["$2a$", "$2y$"] {
            let other = format!("{prefix}{}", &hash[4..]);
            assert!(verifies(password, &other).await, "{other}");
        }
    }

    #[tokio::test]
    async fn a_wrong_password_does_not_verify() {
        for (password, hash) in NODE_HASHES {
            assert!(!verifies(&format!("{password}x"), hash).await);
            assert!(!verifies("correct horse batterY", hash).await);
            assert!(!verifies("", hash).await);
        }
        let (password, hash) = NODE_HASHES[0];
        // `$2x$` (crypt_blowfish's buggy variant) and malformed bcrypt.
        assert!(!verifies(password, &format!("$2x${}", &hash[4..])).await);
        assert!(!verifies(password, &hash[..59]).await);
        for junk in ["", password, "$2b$10$notahash", "$argon2id$v=19$junk"] {
            assert!(!verifies(password, junk).await, "{junk:?}");
        }
    }

    #[tokio::test]
    async fn hashes_follow_the_policy_and_verify() {
        let h = hash_password_as("correct horse".into(), PasswordHash::Bcrypt)
            .await
            .unwrap();
        assert!(h.starts_with("$2b$10$"), "{h}");
        assert_eq!(h.len(), 60);
        assert_eq!(hash_kind(&h), HashKind::Bcrypt);
        assert!(verifies("correct horse", &h).await);
        assert!(!verifies("wrong horse", &h).await);

        let h = hash_password_as("correct horse".into(), PasswordHash::Argon2id)
            .await
            .unwrap();
        assert!(h.starts_with("$argon2id$v=19$m="), "{h}");
        assert_eq!(hash_kind(&h), HashKind::Argon2);
        assert!(verifies("correct horse", &h).await);
        assert!(!verifies("wrong horse", &h).await);

        // The default policy is bcrypt.
        assert_eq!(PasswordHash::default(), PasswordHash::Bcrypt);
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$2b$10$"), "{h}");
    }

    #[tokio::test]
    async fn long_passwords_count_up_to_72_bytes_like_node_bcrypt() {
        // node: bcrypt.hashSync("0123456789".repeat(10), 10); node's
        // bcrypt.compare accepts the first 72 bytes plus anything, and
        // refuses the first 71.
        let long = "0123456789".repeat(10);
        let node = "$2b$10$qX48cGJ4AorCQHeqf5BJ5OssFl7QO.ELsDyGBxpEkBR9q4X.dtC1a";
        assert!(verifies(&long, node).await);
        assert!(verifies(&format!("{}xyz", &long[..72]), node).await);
        assert!(!verifies(&long[..71], node).await);

        // The hub's own hash of it behaves the same.
        let ours = hash_password_as(long.clone(), PasswordHash::Bcrypt)
            .await
            .unwrap();
        assert!(verifies(&long, &ours).await);
        assert!(verifies(&format!("{}xyz", &long[..72]), &ours).await);
        assert!(!verifies(&long[..71], &ours).await);

        // Bytes, not characters: node: bcrypt.hashSync("é".repeat(40), 10)
        // (80 bytes) accepts 36 "é" (72 bytes) plus anything.
        let node = "$2b$10$/C3Rf9sRZ.BNKa1lF4zF5O3AUPqfP9uGOrC77cfx46zKE95jhyi/.";
        assert!(verifies(&"é".repeat(40), node).await);
        assert!(verifies(&format!("{}xyz", "é".repeat(36)), node).await);
        assert!(!verifies(&format!("{}x", "é".repeat(35)), node).await);

        // argon2id has no such limit.
        let ours = hash_password_as(long.clone(), PasswordHash::Argon2id)
            .await
            .unwrap();
        assert!(verifies(&long, &ours).await);
        assert!(!verifies(&format!("{}xyz", &long[..72]), &ours).await);
    }

    #[tokio::test]
    async fn a_nul_in_the_password_counts_like_in_node_bcrypt() {
        // node: bcrypt.hashSync("abcdefgh\u0000zzz", 10); node's compare
        // refuses "abcdefgh" for it (node passes the length, not a C string).
        let node = "$2b$10$566NvT0VFjQIYE51aeO11Ot6whIS.u/Si9sseZvDokFXoW8fioTOq";
        assert!(verifies("abcdefgh\0zzz", node).await);
        assert!(!verifies("abcdefgh", node).await);
        assert!(!verifies("abcdefgh\0", node).await);
    }

    #[test]
    fn rehash_follows_the_policy() {
        let argon = DUMMY_ARGON2ID;
        let (_, b) = NODE_HASHES[0];
        let a = format!("$2a${}", &b[4..]);
        let y = format!("$2y${}", &b[4..]);
        assert!(needs_rehash(argon, PasswordHash::Bcrypt));
        assert!(needs_rehash(&y, PasswordHash::Bcrypt));
        assert!(!needs_rehash(b, PasswordHash::Bcrypt));
        assert!(!needs_rehash(&a, PasswordHash::Bcrypt));
        assert!(!needs_rehash("plain", PasswordHash::Bcrypt));
        for h in [argon, b, &a, &y, "plain"] {
            assert!(!needs_rehash(h, PasswordHash::Argon2id), "{h}");
        }
    }

    #[tokio::test]
    async fn dummy_hashes_are_valid_and_of_the_policy_kind() {
        assert!(bcrypt::verify("x", DUMMY_BCRYPT).is_ok());
        assert!(Phc::new(DUMMY_ARGON2ID).is_ok());
        for policy in [PasswordHash::Bcrypt, PasswordHash::Argon2id] {
            let d = dummy_hash(policy);
            assert!(!needs_rehash(d, policy));
            assert_eq!(
                hash_kind(d),
                match policy {
                    PasswordHash::Bcrypt => HashKind::Bcrypt,
                    PasswordHash::Argon2id => HashKind::Argon2,
                }
            );
            assert!(!verifies("correct horse battery", d).await);
        }
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
