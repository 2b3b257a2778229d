//! Joining a party: six-character join codes (made with every session, and
//! lazily for sessions the old app made), the token-free lookup and
//! `/j/CODE`, guest accounts from just a name, and a guest claiming its
//! account with an email and password.

use std::collections::BTreeSet;

use audotics_client::{RawResponse, Rest};
use audotics_hub::db::{guests, joins};
use audotics_protocol::ErrorCode;
use reqwest::Method;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::helpers::*;

/// The problem code and HTTP status a typed call was refused with.
fn refusal<T: std::fmt::Debug>(r: Result<T, audotics_client::RestError>) -> (u16, ErrorCode) {
    let e = r.expect_err("should be refused");
    let p = e
        .problem()
        .unwrap_or_else(|| panic!("not a problem: {e}"))
        .clone();
    (p.status, p.code)
}

/// A code no session has (the alphabet's, but not `taken`).
fn unused_code(taken: &BTreeSet<String>) -> String {
    loop {
        let c = joins::random_code();
        if !taken.contains(&c) {
            return c;
        }
    }
}

fn retry_after(r: &RawResponse) -> u64 {
    r.headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", r.headers))
}

async fn stored_code(db: &PgPool, session: &str) -> Option<String> {
    sqlx::query_scalar("SELECT code FROM hub_join_code WHERE session_id = $1")
        .bind(session)
        .fetch_optional(db)
        .await
        .unwrap()
}

/// A session the old app made: GroupSession, its Playlist (created by
/// `host`) and `host` as its member; no join code. Its id.
async fn old_app_session(db: &PgPool, host: &TestUser) -> String {
    let (sid, pid) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    sqlx::query(
        r#"INSERT INTO "GroupSession" ("id", "name", "updatedAt") VALUES ($1, 'Old party', now())"#,
    )
    .bind(&sid)
    .execute(db)
    .await
    .unwrap();
    sqlx::query(r#"INSERT INTO "_GroupSessionToUser" ("A", "B") VALUES ($1, $2)"#)
        .bind(&sid)
        .bind(&host.id)
        .execute(db)
        .await
        .unwrap();
    sqlx::query(
        r#"INSERT INTO "Playlist" ("id", "name", "updatedAt", "creatorId", "sessionId")
           VALUES ($1, 'Old party', now(), $2, $3)"#,
    )
    .bind(&pid)
    .bind(&host.id)
    .bind(&sid)
    .execute(db)
    .await
    .unwrap();
    sid
}

#[tokio::test]
async fn every_new_session_gets_a_unique_code_of_the_alphabet() {
    let app = spawn_app().await;
    let host = app.register("Hana").await;
    let rest = app.as_user(&host);
    let mut codes = BTreeSet::new();
    for i in 0..20 {
        let c = rest
            .create_session(&format!("Party {i}"), None)
            .await
            .unwrap();
        let code = c.join_code;
        assert_eq!(code.len(), 6, "{code}");
        assert!(
            code.bytes().all(|b| joins::ALPHABET.contains(&b)),
            "{code} is of the alphabet"
        );
        assert_eq!(
            stored_code(&app.db, &c.session.id).await,
            Some(code.clone())
        );
        assert_eq!(rest.session_code(&c.session.id).await.unwrap().code, code);
        assert!(codes.insert(code), "codes are unique");
    }
    // The list shows each active session's code.
    let listed = rest.list_sessions_with_codes(None, None).await.unwrap();
    let listed: BTreeSet<String> = listed.into_iter().filter_map(|s| s.join_code).collect();
    assert_eq!(listed, codes);

    // The alphabet is the exact one documented, and the table refuses any
    // other character (the old app cannot slip in a look-alike either).
    assert_eq!(joins::ALPHABET, b"34679CDFGHJKMNPQRTVWXY");
    let (other, _) = app.create_session(&host, "Other").await;
    sqlx::query("DELETE FROM hub_join_code WHERE session_id = $1")
        .bind(&other)
        .execute(&app.db)
        .await
        .unwrap();
    for bad in ["CDFGH0", "CDFGHO", "cdfghj", "CDFGH", "CDFGHJK"] {
        let r = sqlx::query("INSERT INTO hub_join_code (code, session_id) VALUES ($1, $2)")
            .bind(bad)
            .bind(&other)
            .execute(&app.db)
            .await;
        assert!(r.is_err(), "{bad} is refused");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_lookup_needs_no_token_and_ignores_case_spaces_and_dashes() {
    let app = spawn_app().await;
    let host = app.register("Hana").await;
    let c = app
        .as_user(&host)
        .create_session("Friday", None)
        .await
        .unwrap();
    let code = c.join_code.clone();
    let anon = app.rest.anonymous();
    let lower = code.to_lowercase();
    let spaced = format!(" {} {} ", &lower[..3], &code[3..]);
    let dashed = format!("{}-{}", &code[..3], &lower[3..]);
    for typed in [
        code.as_str(),
        lower.as_str(),
        spaced.as_str(),
        dashed.as_str(),
    ] {
        let t = anon.join_lookup(typed).await.unwrap();
        assert_eq!(t.code, code, "{typed:?}");
        assert_eq!(t.session_id, c.session.id);
        assert_eq!(t.name, "Friday");
        assert_eq!(
            (t.host.id.as_str(), t.host.name.as_str()),
            (host.id.as_str(), "Hana")
        );
        assert_eq!(t.members, 1);
        assert!(t.active);
    }
    // A member more shows.
    let gus = app.register("Gus").await;
    let (_ws, _) = app.join(&gus, &c.session.id).await;
    assert_eq!(anon.join_lookup(&code).await.unwrap().members, 2);
    app.stop().await;
}

#[tokio::test]
async fn unknown_codes_and_ended_sessions_codes_are_not_found() {
    let app = spawn_app().await;
    let host = app.register("Hana").await;
    let rest = app.as_user(&host);
    let c = rest.create_session("Friday", None).await.unwrap();
    let anon = app.rest.anonymous();

    let taken = BTreeSet::from([c.join_code.clone()]);
    for typed in [
        unused_code(&taken),
        "HELLO!".into(),
        "CDFGH".into(),
        "0O1IL2".into(),
        "x".repeat(100),
    ] {
        assert_eq!(
            refusal(anon.join_lookup(&typed).await),
            (404, ErrorCode::NotFound),
            "{typed:?}"
        );
    }

    rest.end_session(&c.session.id).await.unwrap();
    assert_eq!(
        refusal(anon.join_lookup(&c.join_code).await),
        (404, ErrorCode::NotFound)
    );
    assert_eq!(
        refusal(rest.session_code(&c.session.id).await),
        (409, ErrorCode::Conflict)
    );
    let listed = rest.list_sessions_with_codes(None, None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].join_code, None, "an ended session lists no code");
    // The ended session keeps its code: it is never handed to another.
    assert_eq!(stored_code(&app.db, &c.session.id).await, Some(c.join_code));
    app.stop().await;
}

#[tokio::test]
async fn a_session_the_old_app_made_gets_its_code_on_first_request() {
    let app = spawn_app().await;
    let host = app.register("Hana").await;
    let rest = app.as_user(&host);
    let sid = old_app_session(&app.db, &host).await;
    assert_eq!(stored_code(&app.db, &sid).await, None);

    // Members only.
    let stranger = app.register("Stan").await;
    assert_eq!(
        refusal(app.as_user(&stranger).session_code(&sid).await),
        (403, ErrorCode::Forbidden)
    );
    assert_eq!(stored_code(&app.db, &sid).await, None);

    let code = rest.session_code(&sid).await.unwrap();
    assert_eq!(code.session_id, sid);
    assert_eq!(stored_code(&app.db, &sid).await, Some(code.code.clone()));
    // Asked again (or at the same time), it is the same code.
    let (a, b) = tokio::join!(rest.session_code(&sid), rest.session_code(&sid));
    assert_eq!(a.unwrap().code, code.code);
    assert_eq!(b.unwrap().code, code.code);

    let t = app.rest.join_lookup(&code.code).await.unwrap();
    assert_eq!(
        (t.session_id.as_str(), t.name.as_str()),
        (sid.as_str(), "Old party")
    );
    assert_eq!(t.host.id, host.id);

    // The list makes the code of another such session too.
    let sid2 = old_app_session(&app.db, &host).await;
    let listed = rest
        .list_sessions_with_codes(Some(true), None)
        .await
        .unwrap();
    let two = listed.iter().find(|s| s.session.id == sid2).unwrap();
    assert_eq!(two.join_code, stored_code(&app.db, &sid2).await);
    assert!(two.join_code.is_some());

    // Unknown session: 404; a session without a playlist cannot be joined.
    assert_eq!(
        refusal(rest.session_code(&uuid::Uuid::new_v4().to_string()).await),
        (404, ErrorCode::NotFound)
    );
    let bare = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        r#"INSERT INTO "GroupSession" ("id", "name", "updatedAt") VALUES ($1, 'Bare', now())"#,
    )
    .bind(&bare)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(r#"INSERT INTO "_GroupSessionToUser" ("A", "B") VALUES ($1, $2)"#)
        .bind(&bare)
        .bind(&host.id)
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(
        refusal(rest.session_code(&bare).await),
        (404, ErrorCode::NotFound)
    );
    app.stop().await;
}

/// `/j/CODE` (a join link) and `/tv/CODE` (the big screen) are the
/// client's page, which reads the code from its path.
#[tokio::test]
async fn j_code_and_tv_code_serve_the_web_client() {
    let app = spawn_app().await;
    let index = app.rest.raw(Method::GET, "/", None, &[]).await.unwrap();
    assert_eq!(index.status, 200);
    for prefix in ["/j", "/tv"] {
        for code in ["CDFGHJ", "cdf-ghj", "ANYTHING"] {
            let path = format!("{prefix}/{code}");
            let r = app.rest.raw(Method::GET, &path, None, &[]).await.unwrap();
            assert_eq!(r.status, 200, "{path}");
            assert!(
                r.content_type.starts_with("text/html"),
                "{path}: {}",
                r.content_type
            );
            assert_eq!(r.text, index.text, "{path} is the client's page");
            assert_eq!(
                r.headers.get("referrer-policy").unwrap(),
                "no-referrer",
                "the code in the path is not leaked to other sites"
            );
        }
    }
    // Only one segment: deeper paths are not the client's page.
    let deeper = app
        .rest
        .raw(Method::GET, "/tv/CDFGHJ/x", None, &[])
        .await
        .unwrap();
    assert_eq!(deeper.status, 404);
    app.stop().await;
}

#[tokio::test]
async fn a_guest_joins_with_just_a_name() {
    let p = party().await;
    let app = &p.app;
    let code = app
        .as_user(&p.host)
        .session_code(&p.session)
        .await
        .unwrap()
        .code;

    // The guest looks the code up, then becomes a user with just a name.
    let anon = app.rest.anonymous();
    let target = anon.join_lookup(&code).await.unwrap();
    assert_eq!(target.members, 1);
    let g = anon.guest("  Gia  ").await.unwrap();
    assert!(g.guest);
    assert_eq!(g.user.name, "Gia");
    assert_eq!(g.user.email, guests::email_for(&g.user.id));
    assert_eq!(
        g.user.email,
        format!("guest-{}@guest.audotics.invalid", g.user.id)
    );
    uuid::Uuid::parse_str(&g.user.id).expect("a UUID id like every user's");

    // A normal "User" row to the old app: no password, no Spotify.
    let (email, name, password, spotify_id, updated): (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<chrono::NaiveDateTime>,
    ) = sqlx::query_as(
        r#"SELECT "email", "name", "password", "spotifyId", "updatedAt" FROM "User" WHERE "id" = $1"#,
    )
    .bind(&g.user.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        (email.as_str(), name.as_str()),
        (g.user.email.as_str(), "Gia")
    );
    assert_eq!((password, spotify_id), (None, None));
    assert!(updated.is_some());
    let guest = app.rest.as_user(&g.token);
    let me = guest.me().await.unwrap();
    assert!(me.guest);
    assert_eq!(me.user, g.user);
    // A registered user is not a guest.
    assert!(!app.as_user(&p.host).me().await.unwrap().guest);

    // Its token joins the session over the WebSocket and adds a track.
    let mut ws = app.connect().await;
    let snap = ws.join_snapshot(&target.session_id, &g.token).await;
    assert_eq!(snap.you.user_id, g.user.id);
    assert!(snap
        .members
        .iter()
        .any(|m| m.user_id == g.user.id && m.name == "Gia"));
    let (_, entry) = ws.add_acked("g1", &p.tracks[0]).await;
    let snap = app.as_user(&p.host).session(&p.session).await.unwrap();
    let added = snap.queue.iter().find(|e| e.entry_id == entry).unwrap();
    assert_eq!(added.added_by, g.user.id);
    assert_eq!(anon.join_lookup(&code).await.unwrap().members, 2);

    // Names are checked like registration's; a guest cannot sign in with
    // a password (it has none).
    let long = "n".repeat(201);
    for bad in ["", "   ", long.as_str(), "a\u{7}b"] {
        let r = anon.guest(bad).await;
        let e = r.expect_err("refused");
        let pr = e.problem().unwrap();
        assert_eq!(
            (pr.status, pr.field.as_deref()),
            (422, Some("name")),
            "{bad:?}"
        );
    }
    assert_eq!(
        refusal(app.rest.login(&g.user.email, "correct horse battery").await),
        (401, ErrorCode::Unauthorized)
    );
    // Nobody registers an address in the guests' domain.
    let r = app
        .rest
        .register("guest-x@guest.audotics.invalid", "Eve", PASSWORD)
        .await;
    let e = r.expect_err("refused");
    assert_eq!(
        (e.status(), e.problem().unwrap().field.as_deref()),
        (Some(422), Some("email"))
    );
    p.app.stop().await;
}

#[tokio::test]
async fn a_guest_claims_its_account_and_keeps_its_id() {
    let p = party().await;
    let app = &p.app;
    let g = app.rest.guest("Gia").await.unwrap();
    let guest = app.rest.as_user(&g.token);
    let (mut ws, _) = {
        let mut ws = app.connect().await;
        let s = ws.join_snapshot(&p.session, &g.token).await;
        (ws, s)
    };
    ws.add_acked("g1", &p.tracks[1]).await;
    ws.interaction("g2", &p.tracks[1], "like").await;
    ws.recv_until(|m| matches!(m, audotics_protocol::ServerMsg::Ack { .. }))
        .await;

    let email = unique_email("gia");
    let shouted = email.to_uppercase();
    let c = guest.claim(&shouted, PASSWORD).await.unwrap();
    assert!(!c.guest);
    assert_eq!(c.user.id, g.user.id);
    assert_eq!(
        c.user.email, email,
        "stored lower-cased, as registration does"
    );
    assert_eq!(c.user.name, "Gia");

    // The same token still works, and says it is no guest now.
    let me = guest.me().await.unwrap();
    assert!(!me.guest);
    assert_eq!(me.user.email, email);
    assert_eq!(
        count(
            app,
            "SELECT count(*) FROM hub_guest WHERE user_id = $1",
            &g.user.id
        )
        .await,
        0
    );
    // Its password is a bcrypt hash the old app can check.
    let hash: String = sqlx::query_scalar(r#"SELECT "password" FROM "User" WHERE "id" = $1"#)
        .bind(&g.user.id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(hash.starts_with("$2b$10$"), "{hash}");
    assert!(bcrypt::verify(PASSWORD, &hash).unwrap());

    // Sign-in with the email and password is the same user.
    let l = app.rest.login(&email, PASSWORD).await.unwrap();
    assert_eq!(l.user.id, g.user.id);
    // Its membership, queue entry and interaction are still its own.
    let listed = app
        .rest
        .as_user(&l.token)
        .list_sessions(None, None)
        .await
        .unwrap();
    assert!(listed.iter().any(|s| s.id == p.session));
    let snap = app
        .rest
        .as_user(&l.token)
        .session(&p.session)
        .await
        .unwrap();
    assert!(snap.queue.iter().any(|e| e.added_by == g.user.id));
    assert_eq!(
        count(
            app,
            r#"SELECT count(*) FROM "TrackInteraction" WHERE "userId" = $1"#,
            &g.user.id
        )
        .await,
        1
    );
    // The socket it had open carries on.
    ws.add_acked("g3", &p.tracks[2]).await;

    // Claimed once; an account that is not a guest cannot claim.
    assert_eq!(
        refusal(guest.claim(&unique_email("again"), PASSWORD).await),
        (403, ErrorCode::Forbidden)
    );
    assert_eq!(
        refusal(
            app.as_user(&p.host)
                .claim(&unique_email("host"), PASSWORD)
                .await
        ),
        (403, ErrorCode::Forbidden)
    );
    // Without a token: 401.
    assert_eq!(
        refusal(app.rest.claim(&unique_email("anon"), PASSWORD).await),
        (401, ErrorCode::Unauthorized)
    );
    p.app.stop().await;
}

#[tokio::test]
async fn claiming_a_taken_or_invalid_email_changes_nothing() {
    let p = party().await;
    let app = &p.app;
    let g = app.rest.guest("Gia").await.unwrap();
    let guest = app.rest.as_user(&g.token);

    // Taken, in any case: 409 with registration's words.
    for taken in [p.host.email.clone(), p.host.email.to_uppercase()] {
        let e = guest.claim(&taken, PASSWORD).await.expect_err("taken");
        let pr = e.problem().unwrap();
        assert_eq!((pr.status, pr.code), (409, ErrorCode::Conflict), "{taken}");
        assert_eq!(pr.detail, "an account with this email already exists");
    }
    // Invalid fields: 422 naming them, as registration does.
    for (email, password, field) in [
        ("not-an-email", PASSWORD, "email"),
        ("gia@example.test", "short", "password"),
        ("guest-1@guest.audotics.invalid", PASSWORD, "email"),
    ] {
        let e = guest.claim(email, password).await.expect_err("invalid");
        let pr = e.problem().unwrap();
        assert_eq!(
            (pr.status, pr.field.as_deref()),
            (422, Some(field)),
            "{email} {password}"
        );
    }
    // Still a guest, with its synthetic email and no password.
    let me = guest.me().await.unwrap();
    assert!(me.guest);
    assert_eq!(me.user.email, g.user.email);
    let pw: Option<String> = sqlx::query_scalar(r#"SELECT "password" FROM "User" WHERE "id" = $1"#)
        .bind(&g.user.id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(pw, None);
    // The host still signs in as before.
    assert_eq!(
        app.rest
            .login(&p.host.email, PASSWORD)
            .await
            .unwrap()
            .user
            .id,
        p.host.id
    );

    // Two claims at once of two guests for one email: exactly one wins.
    let h = app.rest.guest("Hal").await.unwrap();
    let email = unique_email("race");
    let other = app.rest.as_user(&h.token);
    let (a, b) = tokio::join!(guest.claim(&email, PASSWORD), other.claim(&email, PASSWORD));
    let wins = [a.is_ok(), b.is_ok()];
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
    let loser = if a.is_ok() { b } else { a };
    assert_eq!(refusal(loser), (409, ErrorCode::Conflict));
    p.app.stop().await;
}

#[tokio::test]
async fn guest_accounts_and_lookups_are_rate_limited_per_address() {
    let app = spawn_app_with(|c| {
        c.limits.signups_per_minute = 3;
        c.limits.join_lookups_per_minute = 3;
    })
    .await;
    let body = r#"{"name":"Flood"}"#;
    for i in 0..4 {
        let r = app
            .rest
            .raw(Method::POST, "/v1/auth/guest", Some(body), &[])
            .await
            .unwrap();
        if i < 3 {
            assert_eq!(r.status, 201, "{}", r.text);
        } else {
            assert_eq!(r.status, 429, "{}", r.text);
            assert_eq!(r.problem().unwrap().code, ErrorCode::RateLimited);
            assert!(retry_after(&r) >= 1);
        }
    }
    let guests: i64 = sqlx::query_scalar("SELECT count(*) FROM hub_guest")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(guests, 3);

    // Lookups, hits and misses alike, count per address.
    let code = joins::random_code();
    for i in 0..4 {
        let r = app
            .rest
            .raw(Method::GET, &format!("/v1/join/{code}"), None, &[])
            .await
            .unwrap();
        if i < 3 {
            assert_eq!(r.status, 404, "{}", r.text);
        } else {
            assert_eq!(r.status, 429, "{}", r.text);
            assert_eq!(r.problem().unwrap().code, ErrorCode::RateLimited);
            assert!(retry_after(&r) >= 1);
        }
    }
    app.stop().await;
}

/// The answers to `calls` (method, path, body), read raw.
async fn raw_bodies(rest: &Rest, calls: &[(Method, String, Option<String>)]) -> Vec<RawResponse> {
    let mut out = Vec::new();
    for (m, path, body) in calls {
        out.push(
            rest.raw(m.clone(), path, body.as_deref(), &[])
                .await
                .unwrap(),
        );
    }
    out
}

#[tokio::test]
async fn no_secret_is_in_any_joining_response() {
    let app = spawn_app().await;
    let host = app.register("Hana").await;
    let c = app
        .as_user(&host)
        .create_session("Friday", None)
        .await
        .unwrap();

    let made = app
        .rest
        .raw(
            Method::POST,
            "/v1/auth/guest",
            Some(r#"{"name":"Gia"}"#),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(made.status, 201, "{}", made.text);
    let token = made.body["token"].as_str().unwrap().to_owned();
    let id = made.body["user"]["id"].as_str().unwrap().to_owned();
    let guest = app.rest.as_user(&token);
    let email = unique_email("gia");
    let claim = format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#);
    let answers = raw_bodies(
        &guest,
        &[
            (Method::GET, "/v1/me".into(), None),
            (Method::GET, format!("/v1/join/{}", c.join_code), None),
            (Method::POST, "/v1/auth/claim".into(), Some(claim.clone())),
            (Method::POST, "/v1/auth/claim".into(), Some(claim)),
            (Method::GET, "/v1/me".into(), None),
        ],
    )
    .await;
    let host_rest = app.as_user(&host);
    let more = raw_bodies(
        &host_rest,
        &[
            (
                Method::GET,
                format!("/v1/sessions/{}/code", c.session.id),
                None,
            ),
            (Method::GET, "/v1/sessions".into(), None),
            (
                Method::POST,
                "/v1/sessions".into(),
                Some(r#"{"name":"Saturday"}"#.into()),
            ),
        ],
    )
    .await;
    let hash: String = sqlx::query_scalar(r#"SELECT "password" FROM "User" WHERE "id" = $1"#)
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let token_hash: String = Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let stored_hashes: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM hub_auth_token")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert!(stored_hashes.contains(&token_hash));
    assert_eq!((answers[2].status, answers[3].status), (200, 403));
    for r in answers.iter().chain(more.iter()) {
        assert!(
            (200..300).contains(&r.status) || r.status == 403,
            "{}",
            r.text
        );
        assert!(!r.text.contains(&hash), "{}", r.text);
        assert!(!r.text.contains("$2b$"), "{}", r.text);
        assert!(!r.text.contains(PASSWORD), "{}", r.text);
        assert!(
            !r.text.contains(&token),
            "the token is shown once: {}",
            r.text
        );
        assert!(!r.text.to_lowercase().contains("password"), "{}", r.text);
        for h in &stored_hashes {
            assert!(!r.text.contains(h.as_str()), "{}", r.text);
        }
    }
    // The guest's own answer carries its token, once, and nothing else secret.
    assert!(
        !made.text.to_lowercase().contains("password"),
        "{}",
        made.text
    );
    for h in &stored_hashes {
        assert!(!made.text.contains(h.as_str()));
    }
    app.stop().await;
}
