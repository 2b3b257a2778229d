//! Accounts shared with the old app (NestJS + Prisma): its bcrypt hashes sign
//! in here, the hashes the hub writes sign in there (node `bcrypt.compare`),
//! and a sign-in rewrites a hash that is not of the policy's kind.

use audotics_hub::auth;
use audotics_hub::config::PasswordHash;
use chrono::NaiveDateTime;

use crate::helpers::{spawn_app, spawn_app_with, unique_email, TestApp, PASSWORD};

/// `PASSWORD` ("correct horse battery") hashed the way the old app hashes it:
/// `require('bcrypt').hashSync('correct horse battery', 10)`, node `bcrypt`
/// 6.0.0 (the old app's library).
const NODE_BCRYPT: &str = "$2b$10$zyAWaPFJlTBrgMJ454DEXuWIR.MfjZD00YlNz8SOEJrXzyFy4dvny";

/// The same password from the pure-JS `bcryptjs` 3.0.3
/// (`require('bcryptjs').hashSync('correct horse battery', 10)`).
const NODE_BCRYPTJS: &str = "$2b$10$JUQmQNdaPzhuFwvUJqfyie7j0XtkeoeVGAQg3a2NcZhORcWQB.pqG";

/// What the old app wrote as "createdAt" and "updatedAt" (Prisma, timestamp(3)).
const OLD_TIME: &str = "2024-12-01 10:00:00.123";

/// A "User" row as Prisma's `user.create({ data: { email, name, password } })`
/// leaves it: a uuid text id, both timestamps set; its id.
async fn insert_prisma_user(app: &TestApp, email: &str, name: &str, password: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let at = NaiveDateTime::parse_from_str(OLD_TIME, "%Y-%m-%d %H:%M:%S%.f").unwrap();
    sqlx::query(
        r#"INSERT INTO "User" ("id", "email", "name", "password", "createdAt", "updatedAt")
           VALUES ($1, $2, $3, $4, $5, $5)"#,
    )
    .bind(&id)
    .bind(email)
    .bind(name)
    .bind(password)
    .bind(at)
    .execute(&app.db)
    .await
    .unwrap();
    id
}

/// The stored password hash and "updatedAt" of user `id`.
async fn stored(app: &TestApp, id: &str) -> (String, String) {
    let (pw, updated): (Option<String>, NaiveDateTime) =
        sqlx::query_as(r#"SELECT "password", "updatedAt" FROM "User" WHERE "id" = $1"#)
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    (
        pw.unwrap(),
        updated.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
    )
}

/// A `$2b$10$` hash that node's `bcrypt.compare(password, hash)` accepts:
/// the old app's version and cost, and a real bcrypt of `password`.
fn assert_node_bcrypt(hash: &str, password: &str) {
    assert!(hash.starts_with("$2b$10$"), "{hash}");
    assert_eq!(hash.len(), 60, "{hash}");
    assert!(bcrypt::verify(password, hash).unwrap(), "{hash}");
    assert!(!bcrypt::verify(format!("{password}!"), hash).unwrap());
}

fn status<T: std::fmt::Debug>(r: Result<T, audotics_client::RestError>) -> Option<u16> {
    r.expect_err("should fail").status()
}

#[tokio::test]
async fn an_old_app_account_signs_in_with_its_bcrypt_hash() {
    let app = spawn_app().await;
    for (name, hash) in [("Nora", NODE_BCRYPT), ("Jay", NODE_BCRYPTJS)] {
        let email = unique_email(&name.to_lowercase());
        let id = insert_prisma_user(&app, &email, name, hash).await;

        let r = app.rest.login(&email, PASSWORD).await.unwrap();
        assert_eq!(r.user.id, id);
        assert_eq!(r.user.name, name);
        let me = app.rest.as_user(&r.token).me().await.unwrap();
        assert_eq!(me.user.id, id);

        assert_eq!(
            status(app.rest.login(&email, "correct horse batterY").await),
            Some(401)
        );
        assert_eq!(
            status(app.rest.register(&email, name, PASSWORD).await),
            Some(409)
        );
        // Already the policy's kind: kept as the old app wrote it.
        assert_eq!(stored(&app, &id).await, (hash.to_owned(), OLD_TIME.into()));
    }
    app.stop().await;
}

#[tokio::test]
async fn a_hub_registered_account_has_a_node_compatible_bcrypt_hash() {
    let app = spawn_app().await;
    let user = app.register("Neo").await;
    let (hash, _) = stored(&app, &user.id).await;
    assert_node_bcrypt(&hash, PASSWORD);
    // And the hub signs it in again.
    let r = app.rest.login(&user.email, PASSWORD).await.unwrap();
    assert_eq!(r.user.id, user.id);
    assert_eq!(stored(&app, &user.id).await.0, hash);
    app.stop().await;
}

#[tokio::test]
async fn a_sign_in_rewrites_an_argon2id_or_2y_hash_as_bcrypt() {
    let app = spawn_app().await;
    let argon2id = auth::hash_password_as(PASSWORD.into(), PasswordHash::Argon2id)
        .await
        .unwrap();
    assert!(argon2id.starts_with("$argon2id$"), "{argon2id}");
    // PHP's marker for the same bcrypt; node's `bcrypt.compare` refuses it.
    let two_y = format!("$2y${}", &NODE_BCRYPT[4..]);
    for (name, hash) in [("Ari", argon2id), ("Yves", two_y)] {
        let email = unique_email(&name.to_lowercase());
        let id = insert_prisma_user(&app, &email, name, &hash).await;

        // A wrong password changes nothing.
        assert_eq!(
            status(app.rest.login(&email, "wrong horse battery").await),
            Some(401)
        );
        assert_eq!(stored(&app, &id).await, (hash.clone(), OLD_TIME.into()));

        let r = app.rest.login(&email, PASSWORD).await.unwrap();
        assert_eq!(r.user.id, id);
        let (now, updated) = stored(&app, &id).await;
        assert_node_bcrypt(&now, PASSWORD);
        assert!(updated.as_str() > OLD_TIME, "updatedAt set: {updated}");

        // The new hash signs in, and is kept from then on.
        app.rest.login(&email, PASSWORD).await.unwrap();
        assert_eq!(stored(&app, &id).await, (now, updated));
        assert_eq!(
            status(app.rest.login(&email, "wrong horse battery").await),
            Some(401)
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn under_argon2id_new_accounts_get_argon2id_and_bcrypt_accounts_keep_theirs() {
    let app = spawn_app_with(|c| c.password_hash = PasswordHash::Argon2id).await;
    let user = app.register("Argo").await;
    let (hash, _) = stored(&app, &user.id).await;
    assert!(hash.starts_with("$argon2id$v=19$m="), "{hash}");
    let r = app.rest.login(&user.email, PASSWORD).await.unwrap();
    assert_eq!(r.user.id, user.id);
    assert_eq!(stored(&app, &user.id).await.0, hash);

    // The old app's account still signs in, and its hash stays bcrypt so
    // that the old app can go on signing it in too.
    let email = unique_email("nora");
    let id = insert_prisma_user(&app, &email, "Nora", NODE_BCRYPT).await;
    let r = app.rest.login(&email, PASSWORD).await.unwrap();
    assert_eq!(r.user.id, id);
    assert_eq!(
        stored(&app, &id).await,
        (NODE_BCRYPT.to_owned(), OLD_TIME.into())
    );
    assert_eq!(
        status(app.rest.login(&email, "wrong horse battery").await),
        Some(401)
    );
    assert_eq!(
        status(app.rest.register(&email, "Nora", PASSWORD).await),
        Some(409)
    );
    app.stop().await;
}
