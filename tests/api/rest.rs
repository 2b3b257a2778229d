//! The REST companion (protocol.md, "REST companion" and "Decided details"):
//! every endpoint's success and failure paths, the stored rows behind them,
//! and that no secret ever leaves the hub in a response body.

use std::collections::BTreeSet;

use audotics_client::{
    LoginBody, PreferencesBody, RawResponse, RegisterBody, Registered, SessionBody,
};
use audotics_protocol::model::{TrackBody, TrackFeatures};
use reqwest::{Method, RequestBuilder};
use serde::Serialize;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn healthz_and_readyz_answer() {
    let app = spawn_app().await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

// ------------------------------------------------------------------ helpers

/// The password every user in this file registers with (besides the
/// harness's own "correct horse battery").
const PASSWORD: &str = "s3cret-Passw0rd!";
const SPOTIFY_ACCESS: &str = "BQD-spotify-access-SENTINEL-1234";
const SPOTIFY_REFRESH: &str = "AQC-spotify-refresh-SENTINEL-5678";

/// Strings that must never appear in any response body.
const SECRETS: [&str; 8] = [
    PASSWORD,
    "correct horse battery",
    "$argon2",
    "$2b$",
    SPOTIFY_ACCESS,
    SPOTIFY_REFRESH,
    "spotifyAccessToken",
    "spotifyRefreshToken",
];

type Resp = RawResponse;

/// Send, read the body, and check it carries no secret. Every request in
/// this file goes through here, so the whole suite is scanned.
async fn send(rb: RequestBuilder) -> Resp {
    let r = RawResponse::read(rb).await.expect("request");
    let text = &r.text;
    for s in SECRETS {
        assert!(!text.contains(s), "response leaks {s:?}: {text}");
    }
    assert!(
        !text.contains("\"password\":"),
        "response has a password field: {text}"
    );
    r
}

/// Assert an RFC 9457 problem with `status` and `code`; returns its body.
fn problem(r: &Resp, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text);
    assert!(
        r.content_type.starts_with("application/problem+json"),
        "content type {:?} for {}",
        r.content_type,
        r.text
    );
    let b = &r.body;
    for k in ["type", "title", "detail"] {
        assert!(
            b[k].is_string() && !b[k].as_str().unwrap().is_empty(),
            "{k} in {b}"
        );
    }
    assert_eq!(b["status"], status, "{b}");
    assert_eq!(b["code"], code, "{b}");
    b.clone()
}

/// Assert a 422 `invalid` naming `field`.
fn invalid(r: &Resp, field: &str) {
    let b = problem(r, 422, "invalid");
    assert_eq!(b["field"], field, "{b}");
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn key_set(ks: &[&str]) -> BTreeSet<String> {
    ks.iter().map(|s| s.to_string()).collect()
}

async fn register_raw(app: &TestApp, email: &str, name: &str) -> Resp {
    let body = RegisterBody {
        email,
        name,
        password: PASSWORD,
    };
    send(app.rest.request(Method::POST, "/v1/users").json(&body)).await
}

/// `POST /v1/auth/token` with a well-formed body.
async fn login_raw(app: &TestApp, email: &str, password: &str) -> Resp {
    let body = LoginBody { email, password };
    send(app.rest.request(Method::POST, "/v1/auth/token").json(&body)).await
}

/// Register with this file's password through the scanned path.
async fn register(app: &TestApp, name: &str) -> TestUser {
    let email = unique_email(&name.to_lowercase());
    let r = register_raw(app, &email, name).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r: Registered = r.decode().unwrap();
    TestUser {
        id: r.user.id,
        email,
        name: name.to_owned(),
        password: PASSWORD.to_owned(),
        token: r.token,
    }
}

async fn get(app: &TestApp, user: &TestUser, path: &str) -> Resp {
    send(app.as_user(user).request(Method::GET, path)).await
}

async fn post(app: &TestApp, user: &TestUser, path: &str, body: impl Serialize) -> Resp {
    send(app.as_user(user).request(Method::POST, path).json(&body)).await
}

async fn put(app: &TestApp, user: &TestUser, path: &str, body: impl Serialize) -> Resp {
    send(app.as_user(user).request(Method::PUT, path).json(&body)).await
}

fn is_rfc3339(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

fn is_uuid(v: &Value) -> bool {
    v.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok())
}

/// Count rows in any table of the database whose JSON form contains `needle`.
async fn occurrences_in_db(db: &sqlx::PgPool, needle: &str) -> Vec<String> {
    let tables: Vec<String> = sqlx::query_scalar(
        r#"SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = current_schema() AND c.relkind = 'r'"#,
    )
    .fetch_all(db)
    .await
    .unwrap();
    let mut found = Vec::new();
    for t in tables {
        let n: i64 = sqlx::query_scalar(&format!(
            r#"SELECT count(*) FROM "{t}" x WHERE strpos(to_jsonb(x)::text, $1) > 0"#
        ))
        .bind(needle)
        .fetch_one(db)
        .await
        .unwrap();
        if n > 0 {
            found.push(t);
        }
    }
    found
}

// ------------------------------------------------------------------ accounts

#[tokio::test]
async fn register_returns_the_user_and_a_working_token() {
    let app = spawn_app().await;
    let email = unique_email("ann");
    let r = register_raw(&app, &format!("  {}  ", email.to_uppercase()), "  Ann  ").await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(keys(&r.body), key_set(&["user", "token"]));
    let user = &r.body["user"];
    assert_eq!(
        keys(user),
        key_set(&["id", "email", "name", "avatar", "spotifyId", "createdAt"])
    );
    assert!(is_uuid(&user["id"]), "{user}");
    assert_eq!(user["email"], email, "stored trimmed and lower-cased");
    assert_eq!(user["name"], "Ann");
    assert_eq!(user["avatar"], Value::Null);
    assert_eq!(user["spotifyId"], Value::Null);
    assert!(is_rfc3339(&user["createdAt"]), "{user}");
    let token = r.body["token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 32, "{token}");

    // The token works at once.
    let me = send(app.http.get(app.url("/v1/me")).bearer_auth(&token)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(&me.body["user"], user);
    assert_eq!(me.body["preferences"], Value::Null);

    // Stored: a bcrypt password (the default policy: `$2b$10$`, as the old app
    // writes), a 64-hex token hash, the token nowhere.
    let id = user["id"].as_str().unwrap();
    let (stored_email, pw, created): (String, Option<String>, chrono::NaiveDateTime) =
        sqlx::query_as(r#"SELECT "email", "password", "createdAt" FROM "User" WHERE "id" = $1"#)
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(stored_email, email);
    let pw = pw.unwrap();
    assert!(pw.starts_with("$2b$10$"), "{pw}");
    assert_eq!(pw.len(), 60, "bcrypt: {pw}");
    assert!(!pw.contains(PASSWORD));
    assert_eq!(
        created
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        user["createdAt"].as_str().unwrap(),
        "createdAt sent is createdAt stored"
    );
    let hashes: Vec<String> =
        sqlx::query_scalar("SELECT token_hash FROM hub_auth_token WHERE user_id = $1")
            .bind(id)
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(hashes.len(), 1);
    assert_eq!(hashes[0].len(), 64);
    assert!(hashes[0]
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(hashes[0], audotics_hub::auth::token_hash(&token));
    assert_eq!(
        occurrences_in_db(&app.db, &token).await,
        Vec::<String>::new()
    );
    assert_eq!(
        occurrences_in_db(&app.db, PASSWORD).await,
        Vec::<String>::new()
    );
    app.stop().await;
}

#[tokio::test]
async fn register_refuses_a_duplicate_email_in_any_case() {
    let app = spawn_app().await;
    let email = unique_email("dup");
    assert_eq!(register_raw(&app, &email, "First").await.status, 201);
    let r = register_raw(&app, &email, "Second").await;
    problem(&r, 409, "conflict");

    // "Ann@x" then "ann@x".
    let r = register_raw(&app, "Ann@x", "Ann").await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = register_raw(&app, "ann@x", "Ann again").await;
    problem(&r, 409, "conflict");
    let r = register_raw(&app, "ANN@X", "Ann again").await;
    problem(&r, 409, "conflict");

    // An account the old app stored with capitals is the same account.
    sqlx::query(
        r#"INSERT INTO "User" ("id", "email", "name", "createdAt", "updatedAt")
           VALUES ('legacy-1', 'Mixed.Case@Example.com', 'Legacy', now(), now())"#,
    )
    .execute(&app.db)
    .await
    .unwrap();
    let r = register_raw(&app, "mixed.case@example.com", "Copycat").await;
    problem(&r, 409, "conflict");
    let n: i64 = sqlx::query_scalar(
        r#"SELECT count(*) FROM "User" WHERE lower("email") IN ('ann@x', 'mixed.case@example.com')"#,
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(n, 2);
    app.stop().await;
}

#[tokio::test]
async fn register_validates_every_field() {
    let app = spawn_app().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "email": "not-an-email", "name": "N", "password": PASSWORD }),
            "email",
        ),
        (
            json!({ "email": "a@", "name": "N", "password": PASSWORD }),
            "email",
        ),
        (
            json!({ "email": "", "name": "N", "password": PASSWORD }),
            "email",
        ),
        (
            json!({ "email": "a b@c", "name": "N", "password": PASSWORD }),
            "email",
        ),
        (
            json!({ "email": "p@x", "name": "N", "password": "short" }),
            "password",
        ),
        (
            json!({ "email": "p@x", "name": "", "password": PASSWORD }),
            "name",
        ),
        (
            json!({ "email": "p@x", "name": "   ", "password": PASSWORD }),
            "name",
        ),
        (
            json!({ "email": "p@x", "name": "x".repeat(201), "password": PASSWORD }),
            "name",
        ),
        (json!({ "name": "N", "password": PASSWORD }), "email"),
        (json!({ "email": "p@x", "password": PASSWORD }), "name"),
        (json!({ "email": "p@x", "name": "N" }), "password"),
        (
            json!({ "email": 42, "name": "N", "password": PASSWORD }),
            "email",
        ),
        (
            json!({ "email": "p@x", "name": ["N"], "password": PASSWORD }),
            "name",
        ),
        (
            json!({ "email": "p@x", "name": "N", "password": 12345678 }),
            "password",
        ),
    ];
    for (body, field) in cases {
        let r = send(app.http.post(app.url("/v1/users")).json(&body)).await;
        assert_eq!(r.status, 422, "{body} → {}", r.text);
        invalid(&r, field);
    }
    // Not JSON at all → 400.
    for raw in ["{\"email\": ", "not json", ""] {
        let r = send(
            app.http
                .post(app.url("/v1/users"))
                .header("content-type", "application/json")
                .body(raw),
        )
        .await;
        problem(&r, 400, "invalid");
    }
    let n: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "User""#)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing stored for refused registrations");
    app.stop().await;
}

#[tokio::test]
async fn login_issues_a_token_and_refuses_bad_credentials_alike() {
    let app = spawn_app().await;
    let ann = register(&app, "Ann").await;

    let r = login_raw(&app, &ann.email.to_uppercase(), &ann.password).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let token = r.body["token"].as_str().unwrap().to_owned();
    assert_ne!(token, ann.token, "a new token per login");
    let me = send(app.http.get(app.url("/v1/me")).bearer_auth(&token)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["user"]["id"], ann.id.as_str());
    // The registration token still works too.
    assert_eq!(get(&app, &ann, "/v1/me").await.status, 200);

    let wrong = login_raw(&app, &ann.email, "wrong password").await;
    let unknown = login_raw(&app, "nobody@example.test", PASSWORD).await;
    let wb = problem(&wrong, 401, "unauthorized");
    let ub = problem(&unknown, 401, "unauthorized");
    assert_eq!(
        wb, ub,
        "wrong password and unknown email are indistinguishable"
    );

    let r = send(
        app.http
            .post(app.url("/v1/auth/token"))
            .json(&json!({ "email": ann.email })),
    )
    .await;
    invalid(&r, "password");
    let r = send(
        app.http
            .post(app.url("/v1/auth/token"))
            .header("content-type", "application/json")
            .body("{nope"),
    )
    .await;
    problem(&r, 400, "invalid");

    let tokens: i64 = sqlx::query_scalar("SELECT count(*) FROM hub_auth_token WHERE user_id = $1")
        .bind(&ann.id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(tokens, 2, "failed logins issue nothing");
    app.stop().await;
}

#[tokio::test]
async fn me_needs_a_valid_bearer_token() {
    let app = spawn_app().await;
    let ann = register(&app, "Ann").await;
    let r = send(app.http.get(app.url("/v1/me"))).await;
    problem(&r, 401, "unauthorized");
    let r = send(
        app.http
            .get(app.url("/v1/me"))
            .bearer_auth("aht_not-a-real-token"),
    )
    .await;
    problem(&r, 401, "unauthorized");
    let r = send(
        app.http
            .get(app.url("/v1/me"))
            .header("authorization", format!("Basic {}", ann.token)),
    )
    .await;
    problem(&r, 401, "unauthorized");
    let r = send(app.http.get(app.url("/v1/me")).bearer_auth(&ann.token)).await;
    assert_eq!(r.status, 200);
    assert_eq!(keys(&r.body), key_set(&["user", "preferences", "guest"]));
    assert_eq!(r.body["guest"], false);
    assert_eq!(r.body["user"]["email"], ann.email.as_str());
    assert_eq!(r.body["user"]["name"], "Ann");
    app.stop().await;
}

#[tokio::test]
async fn preferences_round_trip_into_user_preference() {
    let app = spawn_app().await;
    let ann = register(&app, "Ann").await;
    let features = json!({ "danceability": 0.8, "energy": { "min": 0.1, "max": 0.9 }, "moods": ["calm", "happy"] });
    let prefs = PreferencesBody {
        top_tracks: vec![
            "4uLU6hMCjMI75M1A2tKUQC".into(),
            "7ouMYWpwJ422jRcDASZB7P".into(),
        ],
        top_artists: vec!["Rick Astley".into(), "Muse".into()],
        genres: vec!["pop".into(), "rock".into(), "drum & bass".into()],
        features: Some(features.clone()),
    };
    let body = serde_json::to_value(&prefs).unwrap();
    let r = put(&app, &ann, "/v1/me/preferences", &prefs).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let p = &r.body["preferences"];
    assert_eq!(
        keys(p),
        key_set(&[
            "topTracks",
            "topArtists",
            "genres",
            "features",
            "lastUpdated"
        ])
    );
    for k in ["topTracks", "topArtists", "genres", "features"] {
        assert_eq!(p[k], body[k], "{k}");
    }
    assert!(is_rfc3339(&p["lastUpdated"]));
    let me = get(&app, &ann, "/v1/me").await;
    assert_eq!(&me.body["preferences"], p);

    let row: (Vec<String>, Vec<String>, Vec<String>, Value, String) = sqlx::query_as(
        r#"SELECT "topTracks", "topArtists", "genres", "features", pg_typeof("genres")::text
           FROM "UserPreference" WHERE "userId" = $1"#,
    )
    .bind(&ann.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(row.0, ["4uLU6hMCjMI75M1A2tKUQC", "7ouMYWpwJ422jRcDASZB7P"]);
    assert_eq!(row.1, ["Rick Astley", "Muse"]);
    assert_eq!(row.2, ["pop", "rock", "drum & bass"]);
    assert_eq!(row.3, features);
    assert_eq!(row.4, "text[]");

    // A second PUT replaces (one row per user); omitted lists become empty.
    let r = put(
        &app,
        &ann,
        "/v1/me/preferences",
        json!({ "genres": ["jazz"], "features": null }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["preferences"]["genres"], json!(["jazz"]));
    assert_eq!(r.body["preferences"]["topTracks"], json!([]));
    assert_eq!(r.body["preferences"]["features"], Value::Null);
    let n: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "UserPreference" WHERE "userId" = $1"#)
        .bind(&ann.id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(n, 1);

    // Failures leave the stored preferences alone.
    for (bad, field) in [
        (json!({ "features": [1, 2] }), "features"),
        (json!({ "features": "loud" }), "features"),
        (json!({ "features": 3 }), "features"),
        (json!({ "genres": vec!["g"; 501] }), "genres"),
        (json!({ "topTracks": vec!["t"; 501] }), "topTracks"),
        (json!({ "topArtists": [""] }), "topArtists"),
        (json!({ "topArtists": "Muse" }), "topArtists"),
        (json!({ "genres": [1] }), "genres[0]"),
    ] {
        let r = put(&app, &ann, "/v1/me/preferences", bad.clone()).await;
        assert_eq!(r.status, 422, "{bad} → {}", r.text);
        let b = problem(&r, 422, "invalid");
        assert!(
            b["field"]
                .as_str()
                .is_some_and(|f| f == field || f.starts_with(field)),
            "{bad} → field {}",
            b["field"]
        );
    }
    let r = send(
        app.rest
            .request(Method::PUT, "/v1/me/preferences")
            .json(&PreferencesBody::default()),
    )
    .await;
    problem(&r, 401, "unauthorized");
    let genres: Vec<String> =
        sqlx::query_scalar(r#"SELECT "genres" FROM "UserPreference" WHERE "userId" = $1"#)
            .bind(&ann.id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(genres, ["jazz"]);
    app.stop().await;
}

// ------------------------------------------------------------------ tracks

/// A valid upsert body as JSON, for tests that then break one field.
fn track_body(spotify_id: &str) -> Value {
    serde_json::to_value(TrackBody {
        spotify_id: spotify_id.into(),
        name: "Never Gonna Give You Up".into(),
        artists: vec!["Rick Astley".into()],
        album: "Whenever You Need Somebody".into(),
        popularity: Some(87),
        duration_ms: None,
        cover_url: None,
    })
    .unwrap()
}

fn features_body() -> Value {
    serde_json::to_value(TrackFeatures {
        danceability: 0.727,
        energy: 0.939,
        key: 8,
        loudness: -11.855,
        mode: 1,
        speechiness: 0.0369,
        acousticness: 0.135,
        instrumentalness: 0.000026,
        liveness: 0.151,
        valence: 0.916,
        tempo: 113.309,
    })
    .unwrap()
}

#[tokio::test]
async fn tracks_upsert_by_spotify_id_keeps_what_the_catalog_knows() {
    let app = spawn_app().await;
    let ann = register(&app, "Ann").await;

    let r = post(
        &app,
        &ann,
        "/v1/tracks",
        track_body("4uLU6hMCjMI75M1A2tKUQC"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let t = &r.body["track"];
    assert_eq!(
        keys(t),
        key_set(&[
            "id",
            "spotifyId",
            "name",
            "artists",
            "album",
            "popularity",
            "durationMs",
            "coverUrl"
        ])
    );
    assert!(is_uuid(&t["id"]));
    assert_eq!(t["spotifyId"], "4uLU6hMCjMI75M1A2tKUQC");
    assert_eq!(t["artists"], json!(["Rick Astley"]));
    assert_eq!(t["popularity"], 87);
    assert_eq!(r.body["features"], Value::Null);
    let id = t["id"].as_str().unwrap().to_owned();

    // Same spotifyId with other metadata: 200, the same track, every known
    // field kept (the catalog is shared); the features it lacked are filled.
    let mut again = serde_json::to_value(TrackBody {
        spotify_id: "4uLU6hMCjMI75M1A2tKUQC".into(),
        name: "Never Gonna Give You Up (Remastered)".into(),
        artists: vec!["Rick Astley".into(), "PWL".into()],
        album: "The Best Of".into(),
        popularity: Some(90),
        duration_ms: None,
        cover_url: None,
    })
    .unwrap();
    again["features"] = features_body();
    let r = post(&app, &ann, "/v1/tracks", again).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["track"]["id"], id.as_str());
    assert_eq!(r.body["track"]["name"], "Never Gonna Give You Up");
    assert_eq!(r.body["track"]["artists"], json!(["Rick Astley"]));
    assert_eq!(r.body["track"]["album"], "Whenever You Need Somebody");
    assert_eq!(r.body["track"]["popularity"], 87);
    assert_eq!(r.body["features"], features_body());

    let row: (String, Vec<String>, i32, i64) = sqlx::query_as(
        r#"SELECT "name", "artists", "popularity", (SELECT count(*) FROM "Track") FROM "Track" WHERE "id" = $1"#,
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "Never Gonna Give You Up".into(),
            vec!["Rick Astley".into()],
            87,
            1
        )
    );
    let (dance, tempo, key): (f64, f64, i32) = sqlx::query_as(
        r#"SELECT "danceability", "tempo", "key" FROM "TrackFeatures" WHERE "trackId" = $1"#,
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((dance, tempo, key), (0.727, 113.309, 8));

    // Known features are kept too.
    let mut other = track_body("4uLU6hMCjMI75M1A2tKUQC");
    other["features"] = features_body();
    other["features"]["key"] = json!(3);
    let r = post(&app, &ann, "/v1/tracks", other).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["features"]["key"], 8);

    // A new track without popularity starts at 0, and a later write fills
    // it (0 is "unknown"); once known it stays.
    let mut fresh = track_body("7ouMYWpwJ422jRcDASZB7P");
    fresh.as_object_mut().unwrap().remove("popularity");
    let r = post(&app, &ann, "/v1/tracks", fresh).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["track"]["popularity"], 0);
    assert_ne!(r.body["track"]["id"], id.as_str());
    let r = post(
        &app,
        &ann,
        "/v1/tracks",
        track_body("7ouMYWpwJ422jRcDASZB7P"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["track"]["popularity"], 87);
    let mut lower = track_body("7ouMYWpwJ422jRcDASZB7P");
    lower["popularity"] = json!(5);
    let r = post(&app, &ann, "/v1/tracks", lower).await;
    assert_eq!(r.body["track"]["popularity"], 87);
    app.stop().await;
}

#[tokio::test]
async fn tracks_upsert_refuses_bad_fields_and_strangers() {
    let app = spawn_app().await;
    let ann = register(&app, "Ann").await;
    let with = |k: &str, v: Value| {
        let mut b = track_body("goodId123");
        b[k] = v;
        b
    };
    let mut cases: Vec<(Value, &str)> = vec![
        (with("artists", json!([])), "artists"),
        (with("artists", json!(vec!["A"; 51])), "artists"),
        (with("artists", json!(["x".repeat(201)])), "artists"),
        (with("spotifyId", json!("bad id!")), "spotifyId"),
        (with("spotifyId", json!("x".repeat(65))), "spotifyId"),
        (with("spotifyId", json!("")), "spotifyId"),
        (with("popularity", json!(101)), "popularity"),
        (with("popularity", json!(-1)), "popularity"),
        (with("name", json!("")), "name"),
        (with("name", json!("n".repeat(501))), "name"),
        (with("album", json!("a".repeat(501))), "album"),
    ];
    let mut f = track_body("goodId123");
    f["features"] = features_body();
    f["features"]["danceability"] = json!(1.5);
    cases.push((f, "features.danceability"));
    let mut f = track_body("goodId123");
    f["features"] = features_body();
    f["features"]["mode"] = json!(2);
    cases.push((f, "features.mode"));
    for (body, field) in cases {
        let r = post(&app, &ann, "/v1/tracks", body.clone()).await;
        assert_eq!(r.status, 422, "{body} → {}", r.text);
        invalid(&r, field);
    }
    // Wrong types and missing fields name the field too.
    let mut missing = track_body("goodId123");
    missing.as_object_mut().unwrap().remove("album");
    for (body, field) in [
        (with("popularity", json!("high")), "popularity"),
        (with("artists", json!("Rick Astley")), "artists"),
        (missing, "album"),
    ] {
        let r = post(&app, &ann, "/v1/tracks", body.clone()).await;
        invalid(&r, field);
    }
    let n: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "Track""#)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(n, 0);

    let r = send(
        app.http
            .post(app.url("/v1/tracks"))
            .json(&track_body("goodId123")),
    )
    .await;
    problem(&r, 401, "unauthorized");
    let r = send(
        app.http
            .post(app.url("/v1/tracks"))
            .bearer_auth("aht_wrong")
            .json(&track_body("goodId123")),
    )
    .await;
    problem(&r, 401, "unauthorized");
    app.stop().await;
}

#[tokio::test]
async fn tracks_search_by_name_artist_album_literally() {
    let app = spawn_app().await;
    let ann = register(&app, "Ann").await;
    for (sid, name, artists, album, pop) in [
        (
            "t1",
            "Bohemian Rhapsody",
            vec!["Queen"],
            "A Night at the Opera",
            90,
        ),
        (
            "t2",
            "Under Pressure",
            vec!["Queen", "David Bowie"],
            "Hot Space",
            80,
        ),
        (
            "t3",
            "100% Pure Love",
            vec!["Crystal Waters"],
            "Storyteller",
            50,
        ),
        (
            "t4",
            "snake_case_song",
            vec!["Pythonistas"],
            "Underscores",
            40,
        ),
        ("t5", "Snakecase song", vec!["Other"], "Nothing", 30),
        ("t6", "1000 Pure Love", vec!["Someone"], "Else", 20),
    ] {
        let r = post(
            &app,
            &ann,
            "/v1/tracks",
            TrackBody {
                spotify_id: sid.into(),
                name: name.into(),
                artists: artists.into_iter().map(String::from).collect(),
                album: album.into(),
                popularity: Some(pop),
                duration_ms: None,
                cover_url: None,
            },
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let names = |r: &Resp| -> Vec<String> {
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let q = |s: &str| format!("/v1/tracks?q={}", form_urlencode(s));
    assert_eq!(
        names(&get(&app, &ann, &q("rhapsody")).await),
        ["Bohemian Rhapsody"]
    );
    assert_eq!(
        names(&get(&app, &ann, &q("BOWIE")).await),
        ["Under Pressure"]
    );
    assert_eq!(
        names(&get(&app, &ann, &q("queen")).await),
        ["Bohemian Rhapsody", "Under Pressure"]
    );
    assert_eq!(
        names(&get(&app, &ann, &q("hot space")).await),
        ["Under Pressure"]
    );
    assert_eq!(
        names(&get(&app, &ann, &q("opera")).await),
        ["Bohemian Rhapsody"]
    );
    // `%` and `_` match themselves only.
    assert_eq!(
        names(&get(&app, &ann, &q("100%")).await),
        ["100% Pure Love"]
    );
    assert_eq!(names(&get(&app, &ann, &q("%")).await), ["100% Pure Love"]);
    assert_eq!(
        names(&get(&app, &ann, &q("snake_case")).await),
        ["snake_case_song"]
    );
    assert_eq!(names(&get(&app, &ann, &q("_")).await), ["snake_case_song"]);
    assert!(names(&get(&app, &ann, &q("nothing matches this")).await).is_empty());
    // limit
    assert_eq!(
        names(&get(&app, &ann, "/v1/tracks?q=queen&limit=1").await),
        ["Bohemian Rhapsody"]
    );
    let one = get(&app, &ann, "/v1/tracks?q=rhapsody").await;
    assert_eq!(
        one.body["tracks"][0],
        json!({ "id": one.body["tracks"][0]["id"], "spotifyId": "t1", "name": "Bohemian Rhapsody",
                "artists": ["Queen"], "album": "A Night at the Opera", "popularity": 90,
                "durationMs": null, "coverUrl": null })
    );

    // Exact lookup by Spotify id (for pasted links).
    assert_eq!(
        names(&get(&app, &ann, "/v1/tracks?spotifyId=t1").await),
        ["Bohemian Rhapsody"]
    );
    assert!(names(&get(&app, &ann, "/v1/tracks?spotifyId=unknown1").await).is_empty());
    invalid(
        &get(&app, &ann, "/v1/tracks?spotifyId=bad%20id").await,
        "spotifyId",
    );
    invalid(
        &get(&app, &ann, "/v1/tracks?q=queen&spotifyId=t1").await,
        "q",
    );

    invalid(&get(&app, &ann, "/v1/tracks").await, "q");
    invalid(&get(&app, &ann, "/v1/tracks?q=").await, "q");
    invalid(
        &get(&app, &ann, "/v1/tracks?q=queen&limit=0").await,
        "limit",
    );
    invalid(
        &get(&app, &ann, "/v1/tracks?q=queen&limit=101").await,
        "limit",
    );
    invalid(
        &get(&app, &ann, "/v1/tracks?q=queen&limit=ten").await,
        "limit",
    );
    problem(
        &send(app.http.get(app.url("/v1/tracks?q=queen"))).await,
        401,
        "unauthorized",
    );
    app.stop().await;
}

fn form_urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ------------------------------------------------------------------ sessions

#[tokio::test]
async fn create_session_makes_the_caller_host() {
    let app = spawn_app().await;
    let host = register(&app, "Host").await;
    let r = post(
        &app,
        &host,
        "/v1/sessions",
        SessionBody {
            name: "  Friday night  ",
            description: None,
        },
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(keys(&r.body), key_set(&["session", "playlist", "joinCode"]));
    let s = &r.body["session"];
    let p = &r.body["playlist"];
    assert_eq!(
        keys(s),
        key_set(&["id", "name", "active", "createdAt", "updatedAt", "hostId"])
    );
    assert_eq!(
        keys(p),
        key_set(&[
            "id",
            "name",
            "description",
            "spotifyId",
            "creatorId",
            "sessionId"
        ])
    );
    assert!(is_uuid(&s["id"]) && is_uuid(&p["id"]));
    assert_eq!(s["name"], "Friday night");
    assert_eq!(s["active"], true);
    assert_eq!(s["hostId"], host.id.as_str());
    assert!(is_rfc3339(&s["createdAt"]) && is_rfc3339(&s["updatedAt"]));
    assert_eq!(p["name"], "Friday night");
    assert_eq!(p["description"], Value::Null);
    assert_eq!(p["spotifyId"], Value::Null);
    assert_eq!(p["creatorId"], host.id.as_str());
    assert_eq!(p["sessionId"], s["id"]);
    let sid = s["id"].as_str().unwrap();
    let pid = p["id"].as_str().unwrap();

    let (name, active): (String, bool) =
        sqlx::query_as(r#"SELECT "name", "active" FROM "GroupSession" WHERE "id" = $1"#)
            .bind(sid)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((name.as_str(), active), ("Friday night", true));
    let (creator, session): (String, Option<String>) =
        sqlx::query_as(r#"SELECT "creatorId", "sessionId" FROM "Playlist" WHERE "id" = $1"#)
            .bind(pid)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(creator, host.id);
    assert_eq!(session.as_deref(), Some(sid));
    let members: Vec<(String, String)> =
        sqlx::query_as(r#"SELECT "A", "B" FROM "_GroupSessionToUser""#)
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(members, [(sid.to_owned(), host.id.clone())]);

    for (bad, field) in [
        (json!({ "name": "" }), "name"),
        (json!({ "name": "x".repeat(201) }), "name"),
        (json!({}), "name"),
        (json!({ "name": 7 }), "name"),
    ] {
        invalid(&post(&app, &host, "/v1/sessions", bad).await, field);
    }
    let body = SessionBody {
        name: "x",
        description: None,
    };
    let r = send(app.rest.request(Method::POST, "/v1/sessions").json(&body)).await;
    problem(&r, 401, "unauthorized");
    let n: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "GroupSession""#)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(n, 1);
    app.stop().await;
}

#[tokio::test]
async fn list_and_end_sessions() {
    let app = spawn_app().await;
    let host = register(&app, "Host").await;
    let guest = register(&app, "Guest").await;
    let (s1, _) = app.create_session(&host, "One").await;
    let (s2, _) = app.create_session(&host, "Two").await;

    let ids = |r: &Resp| -> BTreeSet<String> {
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    // A list shows the caller's own sessions only (session ids are
    // invitations): the host its two, the guest none until it joins one.
    let both: BTreeSet<String> = [s1.clone(), s2.clone()].into_iter().collect();
    assert_eq!(ids(&get(&app, &host, "/v1/sessions").await), both);
    assert_eq!(
        ids(&get(&app, &host, "/v1/sessions?active=true").await),
        both
    );
    assert!(ids(&get(&app, &guest, "/v1/sessions").await).is_empty());
    let _joined = app.join(&guest, &s1).await;
    assert_eq!(
        ids(&get(&app, &guest, "/v1/sessions").await),
        [s1.clone()].into_iter().collect()
    );
    assert!(ids(&get(&app, &guest, "/v1/sessions?active=false").await).is_empty());
    let listed = get(&app, &host, "/v1/sessions?active=true").await;
    for s in listed.body["sessions"].as_array().unwrap() {
        assert_eq!(
            keys(s),
            key_set(&[
                "id",
                "name",
                "active",
                "createdAt",
                "updatedAt",
                "hostId",
                "joinCode"
            ])
        );
        assert_eq!(s["hostId"], host.id.as_str());
    }
    invalid(
        &get(&app, &guest, "/v1/sessions?active=maybe").await,
        "active",
    );
    invalid(&get(&app, &guest, "/v1/sessions?limit=0").await, "limit");

    // End: only the host, only a known session.
    let end = |s: &str| format!("/v1/sessions/{s}/end");
    problem(
        &post(&app, &guest, &end(&s1), json!({})).await,
        403,
        "forbidden",
    );
    problem(
        &post(
            &app,
            &host,
            &end(&uuid::Uuid::new_v4().to_string()),
            json!({}),
        )
        .await,
        404,
        "not_found",
    );
    problem(
        &post(&app, &host, &end("not-a-uuid"), json!({})).await,
        404,
        "not_found",
    );
    problem(
        &send(app.http.post(app.url(&end(&s1)))).await,
        401,
        "unauthorized",
    );
    let active: bool = sqlx::query_scalar(r#"SELECT "active" FROM "GroupSession" WHERE "id" = $1"#)
        .bind(&s1)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(active, "refused ends change nothing");

    let r = post(&app, &host, &end(&s1), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["session"]["id"], s1.as_str());
    assert_eq!(r.body["session"]["active"], false);
    assert_eq!(r.body["session"]["hostId"], host.id.as_str());
    let active: bool = sqlx::query_scalar(r#"SELECT "active" FROM "GroupSession" WHERE "id" = $1"#)
        .bind(&s1)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(!active);
    // Ending twice is harmless.
    let r = post(&app, &host, &end(&s1), json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["session"]["active"], false);

    assert_eq!(
        ids(&get(&app, &host, "/v1/sessions?active=false").await),
        [s1.clone()].into_iter().collect()
    );
    assert_eq!(
        ids(&get(&app, &host, "/v1/sessions?active=true").await),
        [s2.clone()].into_iter().collect()
    );
    assert_eq!(ids(&get(&app, &host, "/v1/sessions").await), both);
    // The guest's list holds the one it joined, now ended.
    assert_eq!(
        ids(&get(&app, &guest, "/v1/sessions?active=false").await),
        [s1.clone()].into_iter().collect()
    );
    assert!(ids(&get(&app, &guest, "/v1/sessions?active=true").await).is_empty());
    let snap = get(&app, &host, &format!("/v1/sessions/{s1}")).await;
    assert_eq!(snap.body["session"]["active"], false);
    app.stop().await;
}

#[tokio::test]
async fn session_snapshot_over_rest() {
    let app = spawn_app().await;
    let host = register(&app, "Host").await;
    let guest = register(&app, "Guest").await;
    let r = post(
        &app,
        &host,
        "/v1/sessions",
        SessionBody {
            name: "Snapshot",
            description: Some("for testing"),
        },
    )
    .await;
    let sid = r.body["session"]["id"].as_str().unwrap().to_owned();
    let pid = r.body["playlist"]["id"].as_str().unwrap().to_owned();

    let r = get(&app, &host, &format!("/v1/sessions/{sid}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({
            "version": 0,
            "session": { "id": sid, "name": "Snapshot", "active": true, "hostId": host.id },
            "playlist": { "id": pid, "name": "Snapshot", "description": "for testing", "spotifyId": null },
            "queue": [],
            "members": [ { "userId": host.id, "name": host.name, "avatar": null, "online": false, "role": "host" } ],
            "you": { "userId": host.id, "role": "host" },
            "party": {
                "settings": { "order": "host", "guestsAdd": true, "guestsReorder": false,
                              "guestsSkip": false, "guestQueueCap": null, "skipThreshold": 0.5 },
                "nowPlaying": null, "history": [], "skipVotes": [], "cohosts": [], "banned": [],
            },
        })
    );
    // Another user does not see it until it joins (the id is an
    // invitation, not a key to the member list); then it sees the same
    // session as a member.
    problem(
        &get(&app, &guest, &format!("/v1/sessions/{sid}")).await,
        403,
        "forbidden",
    );
    let (guest_ws, _) = app.join(&guest, &sid).await;
    drop(guest_ws);
    let r = get(&app, &guest, &format!("/v1/sessions/{sid}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["you"],
        json!({ "userId": guest.id, "role": "member" })
    );
    assert_eq!(r.body["session"]["hostId"], host.id.as_str());

    problem(
        &get(
            &app,
            &host,
            &format!("/v1/sessions/{}", uuid::Uuid::new_v4()),
        )
        .await,
        404,
        "not_found",
    );
    problem(
        &get(&app, &host, "/v1/sessions/nope").await,
        404,
        "not_found",
    );
    problem(
        &send(app.http.get(app.url(&format!("/v1/sessions/{sid}")))).await,
        401,
        "unauthorized",
    );
    app.stop().await;
}

#[tokio::test]
async fn updates_log_is_paged_in_version_order() {
    let app = spawn_app().await;
    let host = register(&app, "Host").await;
    let (sid, pid) = app.create_session(&host, "Log").await;
    let path = |q: &str| format!("/v1/sessions/{sid}/updates{q}");

    let r = get(&app, &host, &path("")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({ "updates": [], "next": null }));

    for q in ["?after=-1", "?after=x", "?after=1.5"] {
        invalid(&get(&app, &host, &path(q)).await, "after");
    }
    for q in ["?limit=0", "?limit=1001", "?limit=-5", "?limit=many"] {
        invalid(&get(&app, &host, &path(q)).await, "limit");
    }
    problem(
        &get(
            &app,
            &host,
            &format!("/v1/sessions/{}/updates", uuid::Uuid::new_v4()),
        )
        .await,
        404,
        "not_found",
    );
    problem(
        &send(app.http.get(app.url(&path("")))).await,
        401,
        "unauthorized",
    );

    // Seven logged changes, inserted out of order, plus one old-app row
    // without a hub version (not part of the protocol log).
    let track = app.track(&host, "trk1", "Song").await;
    for v in [3i64, 1, 7, 2, 5, 4, 6] {
        let kind = if v == 5 { "reorder" } else { "add" };
        sqlx::query(
            r#"INSERT INTO "PlaylistUpdate" ("id", "playlistId", "type", "trackId", "userId", "timestamp",
                   "hubVersion", "hubEntryId", "hubFromIndex", "hubToIndex", "hubReq")
               VALUES ($1, $2, $3, $4, $5, $11, $6, $7, $8, $9, $10)"#,
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&pid)
        .bind(kind)
        .bind(&track)
        .bind(&host.id)
        .bind(v)
        .bind(format!("entry-{v}"))
        .bind(if v == 5 { Some(2i32) } else { None })
        .bind(if v == 5 { 0i32 } else { (v - 1) as i32 })
        .bind(format!("req-{v}"))
        .bind(
            chrono::NaiveDate::from_ymd_opt(2025, 3, 1)
                .unwrap()
                .and_hms_milli_opt(12, 0, v as u32, 123)
                .unwrap(),
        )
        .execute(&app.db)
        .await
        .unwrap();
    }
    sqlx::query(
        r#"INSERT INTO "PlaylistUpdate" ("id", "playlistId", "type", "trackId", "userId")
           VALUES ('old-app-row', $1, 'add', $2, $3)"#,
    )
    .bind(&pid)
    .bind(&track)
    .bind(&host.id)
    .execute(&app.db)
    .await
    .unwrap();

    let versions = |r: &Resp| -> Vec<i64> {
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["updates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["version"].as_i64().unwrap())
            .collect()
    };
    let all = get(&app, &host, &path("")).await;
    assert_eq!(versions(&all), [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(all.body["next"], Value::Null);
    assert_eq!(
        all.body["updates"][4],
        json!({
            "version": 5, "type": "reorder", "entryId": "entry-5", "trackId": track, "userId": host.id,
            "fromIndex": 2, "toIndex": 0, "timestamp": "2025-03-01T12:00:05.123Z",
        })
    );
    assert_eq!(all.body["updates"][0]["fromIndex"], Value::Null);
    assert_eq!(all.body["updates"][0]["toIndex"], 0);

    let p1 = get(&app, &host, &path("?limit=3")).await;
    assert_eq!(versions(&p1), [1, 2, 3]);
    assert_eq!(p1.body["next"], 3);
    let p2 = get(&app, &host, &path("?after=3&limit=3")).await;
    assert_eq!(versions(&p2), [4, 5, 6]);
    assert_eq!(p2.body["next"], 6);
    let p3 = get(&app, &host, &path("?after=6&limit=3")).await;
    assert_eq!(versions(&p3), [7]);
    assert_eq!(p3.body["next"], Value::Null);
    // A page that ends exactly at the last update is the last page.
    let exact = get(&app, &host, &path("?after=4&limit=3")).await;
    assert_eq!(versions(&exact), [5, 6, 7]);
    assert_eq!(
        exact.body["next"],
        Value::Null,
        "no further page after version 7"
    );
    let past = get(&app, &host, &path("?after=7")).await;
    assert_eq!(past.body, json!({ "updates": [], "next": null }));
    let max = get(&app, &host, &path("?after=0&limit=1000")).await;
    assert_eq!(versions(&max).len(), 7);
    app.stop().await;
}

// ------------------------------------------------------------------ cross-cutting

#[tokio::test]
async fn every_v1_endpoint_but_register_and_login_needs_a_token() {
    let app = spawn_app().await;
    let host = register(&app, "Host").await;
    let (sid, _) = app.create_session(&host, "Private").await;
    let endpoints: Vec<(reqwest::Method, String, Option<Value>)> = vec![
        (reqwest::Method::GET, "/v1/me".into(), None),
        (
            reqwest::Method::PUT,
            "/v1/me/preferences".into(),
            Some(json!({ "genres": ["pop"] })),
        ),
        (
            reqwest::Method::POST,
            "/v1/tracks".into(),
            Some(track_body("abc")),
        ),
        (reqwest::Method::GET, "/v1/tracks?q=abc".into(), None),
        (
            reqwest::Method::POST,
            "/v1/sessions".into(),
            Some(json!({ "name": "S" })),
        ),
        (reqwest::Method::GET, "/v1/sessions".into(), None),
        (
            reqwest::Method::GET,
            "/v1/sessions?active=true".into(),
            None,
        ),
        (reqwest::Method::GET, format!("/v1/sessions/{sid}"), None),
        (
            reqwest::Method::POST,
            format!("/v1/sessions/{sid}/end"),
            None,
        ),
        (
            reqwest::Method::GET,
            format!("/v1/sessions/{sid}/updates"),
            None,
        ),
    ];
    for (method, path, body) in &endpoints {
        for auth in [
            None,
            Some("Bearer aht_bogus"),
            Some("Bearer "),
            Some("Token x"),
        ] {
            let mut rb = app.http.request(method.clone(), app.url(path));
            if let Some(b) = body {
                rb = rb.json(b);
            }
            if let Some(a) = auth {
                rb = rb.header("authorization", a);
            }
            let r = send(rb).await;
            assert_eq!(r.status, 401, "{method} {path} with {auth:?}: {}", r.text);
            problem(&r, 401, "unauthorized");
        }
    }
    // And the two open ones answer without a token.
    let r = register_raw(&app, &unique_email("open"), "Open").await;
    assert_eq!(r.status, 201);
    let r = login_raw(&app, &host.email, PASSWORD).await;
    assert_eq!(r.status, 200);
    // Nothing changed by the refused calls.
    let (sessions, tracks, prefs, active): (i64, i64, i64, bool) = sqlx::query_as(
        r#"SELECT (SELECT count(*) FROM "GroupSession"), (SELECT count(*) FROM "Track"),
                  (SELECT count(*) FROM "UserPreference"),
                  (SELECT "active" FROM "GroupSession" WHERE "id" = $1)"#,
    )
    .bind(&sid)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((sessions, tracks, prefs, active), (1, 0, 0, true));
    app.stop().await;
}

#[tokio::test]
async fn secrets_never_leave_the_hub() {
    let app = spawn_app().await;
    let ann = register(&app, "Ann").await;
    let bob = register(&app, "Bob").await;
    sqlx::query(
        r#"UPDATE "User" SET "spotifyId" = 'spotify-ann', "avatar" = 'https://i.example/ann.png',
               "spotifyAccessToken" = $2, "spotifyRefreshToken" = $3,
               "spotifyTokenExpiry" = '2030-01-01 00:00:00'
           WHERE "id" = $1"#,
    )
    .bind(&ann.id)
    .bind(SPOTIFY_ACCESS)
    .bind(SPOTIFY_REFRESH)
    .execute(&app.db)
    .await
    .unwrap();

    // Every body below is scanned by `send` for the password, "$argon2", "$2b$" and
    // the Spotify token values; check the shapes on top.
    let me = get(&app, &ann, "/v1/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(
        me.body["user"],
        json!({ "id": ann.id, "email": ann.email, "name": "Ann", "avatar": "https://i.example/ann.png",
                "spotifyId": "spotify-ann", "createdAt": me.body["user"]["createdAt"] })
    );
    let login = login_raw(&app, &ann.email, PASSWORD).await;
    assert_eq!(login.status, 200);
    assert_eq!(login.body["user"], me.body["user"]);

    let leaky = SessionBody {
        name: "Leaky?",
        description: None,
    };
    let r = post(&app, &ann, "/v1/sessions", leaky).await;
    let sid = r.body["session"]["id"].as_str().unwrap().to_owned();
    sqlx::query(r#"INSERT INTO "_GroupSessionToUser" ("A", "B") VALUES ($1, $2)"#)
        .bind(&sid)
        .bind(&bob.id)
        .execute(&app.db)
        .await
        .unwrap();
    for viewer in [&ann, &bob] {
        let snap = get(&app, viewer, &format!("/v1/sessions/{sid}")).await;
        assert_eq!(snap.status, 200);
        assert_eq!(
            snap.body["members"],
            json!([
                { "userId": ann.id, "name": "Ann", "avatar": "https://i.example/ann.png", "online": false, "role": "host" },
                { "userId": bob.id, "name": "Bob", "avatar": null, "online": false, "role": "member" },
            ])
        );
    }
    assert_eq!(get(&app, &bob, "/v1/sessions").await.status, 200);
    assert_eq!(
        get(&app, &bob, &format!("/v1/sessions/{sid}/updates"))
            .await
            .status,
        200
    );
    // Errors never echo secrets either (detail of a failed login/registration).
    let r = login_raw(&app, &ann.email, &format!("{PASSWORD}x")).await;
    problem(&r, 401, "unauthorized");
    let r = register_raw(&app, &ann.email, "Ann2").await;
    problem(&r, 409, "conflict");
    // Operator endpoints too.
    let metrics = send(app.http.get(app.url("/metrics"))).await;
    assert_eq!(metrics.status, 200);
    assert!(!metrics.text.contains(&ann.token) && !metrics.text.contains(&ann.email));
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_are_problem_json_404s() {
    let app = spawn_app().await;
    let ann = register(&app, "Ann").await;
    for path in [
        "/nope",
        "/v1",
        "/v1/nope",
        "/v2/users",
        "/v1/sessions/a/b/c",
    ] {
        let r = send(app.http.get(app.url(path))).await;
        problem(&r, 404, "not_found");
        let r = send(app.http.get(app.url(path)).bearer_auth(&ann.token)).await;
        problem(&r, 404, "not_found");
    }
    app.stop().await;
}
