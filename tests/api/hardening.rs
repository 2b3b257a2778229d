//! One client must never take the hub down: idle and half-sent
//! connections, stalled readers, NUL in every field, reads by non-members,
//! token lifetime and revocation, rate limits, readiness and log hygiene.

use std::time::{Duration, Instant};

use audotics_client::{Closed, RestError, Ws};
use audotics_protocol::model::TrackBody;
use audotics_protocol::{ErrorCode, ServerMsg};
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::*;

/// The problem `code` and status of a failed REST call.
fn problem_of(e: RestError) -> (u16, ErrorCode, Option<String>) {
    let p = e
        .problem()
        .cloned()
        .unwrap_or_else(|| panic!("not a problem: {e}"));
    (p.status, p.code, p.field)
}

/// The next error frame (updates and presence in between are skipped).
async fn error_of(ws: &mut Ws, req: Option<&str>, code: ErrorCode) -> String {
    match ws
        .recv_until(|m| matches!(m, ServerMsg::Error { .. }))
        .await
    {
        ServerMsg::Error {
            req: r,
            code: c,
            message,
        } => {
            assert_eq!((r.as_deref(), c), (req, code), "{message}");
            message
        }
        _ => unreachable!(),
    }
}

/// The ack of `req` (whatever comes before it is skipped).
async fn ack_of(ws: &mut Ws, req: &str) -> i64 {
    match ws
        .recv_until(|m| {
            matches!(m, ServerMsg::Ack { req: r, .. } if r == req)
                || matches!(m, ServerMsg::Error { .. })
        })
        .await
    {
        ServerMsg::Ack { version, .. } => version,
        other => panic!("expected the ack of {req}, got {other:?}"),
    }
}

async fn healthz(app: &TestApp) -> u16 {
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        app.http.get(app.url("/healthz")).send(),
    )
    .await
    .expect("/healthz answers within 5 s")
    .expect("/healthz reachable");
    r.status().as_u16()
}

#[tokio::test]
async fn a_flood_of_idle_connections_never_locks_out_a_real_request() {
    let app = spawn_app_with(|c| {
        c.http.max_connections = Some(120);
        c.http.max_unproven_per_ip = 40;
    })
    .await;
    // 300 sockets that never send a byte: far over both caps.
    let mut idle = Vec::new();
    for _ in 0..300 {
        if let Ok(s) = TcpStream::connect(app.addr).await {
            idle.push(s);
        }
    }
    // Give them time to count as idle, then ask for something real.
    tokio::time::sleep(Duration::from_millis(700)).await;
    for _ in 0..3 {
        assert_eq!(healthz(&app).await, 200);
    }
    // Over its caps, the hub answered 503 at once (never out of sockets).
    let mut refused = 0;
    for s in idle.iter_mut() {
        let mut buf = [0u8; 64];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(20), s.read(&mut buf)).await {
            if buf[..n].starts_with(b"HTTP/1.1 503") {
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "no connection was refused with 503");
    // A WebSocket still joins.
    let host = app.register("Host").await;
    let (session, _) = app.create_session(&host, "Still up").await;
    let (_ws, snap) = app.join(&host, &session).await;
    assert_eq!(snap.version, 0);
}

#[tokio::test]
async fn a_half_sent_request_is_closed_after_the_header_timeout_and_never_holds_shutdown() {
    let app = spawn_app_with(|c| c.http.header_timeout = Duration::from_secs(1)).await;
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf))
        .await
        .expect("closed within 5 s")
        .unwrap_or(0);
    assert!(
        n == 0 || buf[..n].starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(started.elapsed() >= Duration::from_millis(900));

    // Another half-sent request, then shutdown: it ends within its grace.
    let mut half = TcpStream::connect(app.addr).await.unwrap();
    half.write_all(b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = Instant::now();
    tokio::time::timeout(Duration::from_secs(12), app.stop())
        .await
        .expect("shutdown finishes with a half-sent request open");
    assert!(stopping.elapsed() < Duration::from_secs(12));
}

#[tokio::test]
async fn a_listener_whose_socket_accepts_nothing_is_cut_off_and_leaves_presence() {
    let p = party_with(|c| {
        unlimited(c);
        // Silence limit 6 s: longer than filling its socket buffers takes,
        // so the write blocks before the read side's silence could cut it
        // off. A huge outbox, so only the stalled write can cut the listener
        // off (not an overflow).
        c.hub.ping_interval = Duration::from_secs(4);
        c.hub.outbound_bytes = 1 << 30;
        c.hub.outbound_frames = 1 << 20;
    })
    .await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    // The guest joins over a socket with a tiny receive buffer and never
    // reads again.
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(2048).unwrap();
    let tcp = sock.connect(p.app.addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{}/v1/ws", p.app.addr), tcp)
        .await
        .unwrap();
    let mut stalled = audotics_client::Ws::from_stream(ws);
    stalled.join(&p.session, &p.guest.token, None).await;
    host.recv_until(|m| matches!(m, ServerMsg::Presence { online: true, .. }))
        .await;
    // Updates of ~11 KB each, several MB in all: more than its socket
    // buffers take, so the hub's write to it blocks. Then a quiet session.
    let name = "n".repeat(500);
    const N: usize = 600;
    let mut gone = false;
    for i in 0..N {
        let track = TrackBody {
            spotify_id: format!("big{i}"),
            name: name.clone(),
            artists: vec!["a".repeat(200); 50],
            album: name.clone(),
            popularity: None,
            duration_ms: None,
            cover_url: None,
        };
        host.add_track(&format!("h{i}"), track, None).await;
        if i % 16 == 15 || i == N - 1 {
            // The cut may come while the host still waits for its acks.
            let req = format!("h{i}");
            loop {
                match host.recv().await {
                    ServerMsg::Presence {
                        online: false,
                        user_id,
                        ..
                    } if user_id == p.guest.id => gone = true,
                    ServerMsg::Ack { req: r, .. } if r == req => break,
                    ServerMsg::Error { message, .. } => panic!("{req}: {message}"),
                    _ => {}
                }
            }
        }
    }
    let started = Instant::now();
    while !gone {
        let next = tokio::time::timeout(Duration::from_secs(20), host.recv())
            .await
            .expect("the stalled listener is cut off");
        if let ServerMsg::Presence {
            online: false,
            user_id,
            ..
        } = next
        {
            gone = user_id == p.guest.id;
        }
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let snap = p.app.as_user(&p.host).session(&p.session).await.unwrap();
    let guest = snap
        .members
        .iter()
        .find(|m| m.user_id == p.guest.id)
        .unwrap();
    assert!(!guest.online);
    drop(stalled);
}

/// Every text field of every frame with a NUL: refused at the edge with
/// `invalid` naming the field (or `not_found` for an id that cannot name
/// anything), and another member's op in the same moment still commits.
#[tokio::test]
async fn nul_in_any_field_is_refused_and_never_fails_anyone_else() {
    let p = party_with(unlimited).await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    let t = &p.tracks[0];
    let meta = |f: &dyn Fn(&mut TrackBody)| {
        let mut b = track_meta("spx", "Name");
        f(&mut b);
        b
    };
    let cases: Vec<(String, &str, ErrorCode)> = vec![
        (
            format!(r#"{{"type":"add","req":"n1","trackId":"{t}\u0000"}}"#),
            "trackId",
            ErrorCode::Invalid,
        ),
        (
            r#"{"type":"interaction","req":"n2","trackId":"x\u0000","kind":"like"}"#.into(),
            "trackId",
            ErrorCode::Invalid,
        ),
        (
            format!(r#"{{"type":"interaction","req":"n3","trackId":"{t}","kind":"li\u0000ke"}}"#),
            "kind",
            ErrorCode::Invalid,
        ),
        (
            r#"{"type":"remove","req":"n4","entryId":"e\u0000"}"#.into(),
            "entry",
            ErrorCode::NotFound,
        ),
        (
            r#"{"type":"reorder","req":"n5","entryId":"e\u0000","toIndex":0}"#.into(),
            "entry",
            ErrorCode::NotFound,
        ),
    ];
    for (frame, field, code) in &cases {
        guest.send_text(frame).await;
        let req = frame
            .split(r#""req":""#)
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let msg = error_of(&mut guest, Some(&req), *code).await;
        assert!(msg.starts_with(field), "{req}: {msg}");
        // The host's op right beside it commits.
        host.add(&format!("ok-{req}"), t, None).await;
        ack_of(&mut host, &format!("ok-{req}")).await;
    }
    let bodies: Vec<(TrackBody, &str)> = vec![
        (meta(&|b| b.name = "a\0b".into()), "name"),
        (meta(&|b| b.album = "a\0b".into()), "album"),
        (meta(&|b| b.artists = vec!["a\0".into()]), "artists"),
        (meta(&|b| b.spotify_id = "sp\0".into()), "spotifyId"),
    ];
    for (i, (body, field)) in bodies.into_iter().enumerate() {
        let req = format!("m{i}");
        guest.add_track(&req, body, None).await;
        let msg = error_of(&mut guest, Some(&req), ErrorCode::Invalid).await;
        assert!(msg.starts_with(field), "{msg}");
    }
    // A req with a NUL is refused too (and cannot be echoed).
    guest
        .send_text(&format!(
            r#"{{"type":"add","req":"r\u0000","trackId":"{t}"}}"#
        ))
        .await;
    let msg = error_of(&mut guest, None, ErrorCode::Invalid).await;
    assert!(msg.starts_with("req"), "{msg}");
    // A join with a NUL in the session id: `invalid`, and the connection
    // stays open to join properly.
    let mut late = p.app.connect().await;
    late.send_text(&format!(
        r#"{{"type":"join","sessionId":"x\u0000","token":"{}"}}"#,
        p.guest.token
    ))
    .await;
    let msg = late.expect_error(None, ErrorCode::Invalid).await;
    assert!(msg.starts_with("sessionId"), "{msg}");
    let snap = late.join_snapshot(&p.session, &p.guest.token).await;
    assert_eq!(snap.queue.len(), cases.len());
    // Nothing reached Postgres: no failed commit.
    assert_eq!(
        logged_updates(&p.app, &p.playlist).await,
        cases.len() as i64
    );
}

#[tokio::test]
async fn rest_refuses_nul_with_a_field_never_a_500() {
    let p = party().await;
    let host = p.app.as_user(&p.host);
    for path in ["/v1/sessions/%00", "/v1/sessions/%00/updates"] {
        let r = host.raw(Method::GET, path, None, &[]).await.unwrap();
        assert_eq!(r.status, 422, "{path}: {}", r.text);
        assert_eq!(r.problem().unwrap().field.as_deref(), Some("id"));
    }
    let r = host
        .raw(Method::POST, "/v1/sessions/%00/end", Some("{}"), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 422, "{}", r.text);
    for body in [
        r#"{"features": {"ener\u0000gy": 0.5}}"#,
        r#"{"features": {"energy": "hi\u0000"}}"#,
        r#"{"features": {"deep": [{"x": "\u0000"}]}}"#,
    ] {
        let r = host
            .raw(Method::PUT, "/v1/me/preferences", Some(body), &[])
            .await
            .unwrap();
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.problem().unwrap().field.as_deref(), Some("features"));
    }
    let r = host
        .raw(Method::GET, "/v1/tracks?q=a%00b", None, &[])
        .await
        .unwrap();
    assert_eq!(r.status, 422, "{}", r.text);
}

#[tokio::test]
async fn only_members_read_a_session() {
    let p = party().await;
    let stranger = p.app.register("Stranger").await;
    let rest = p.app.as_user(&stranger);
    assert!(rest.list_sessions(None, None).await.unwrap().is_empty());
    let (status, code, _) = problem_of(rest.session(&p.session).await.unwrap_err());
    assert_eq!((status, code), (403, ErrorCode::Forbidden));
    let (status, code, _) = problem_of(rest.updates(&p.session, None, None).await.unwrap_err());
    assert_eq!((status, code), (403, ErrorCode::Forbidden));
    let (status, _, _) = problem_of(rest.end_session(&p.session).await.unwrap_err());
    assert_eq!(status, 403);
    // Holding the id (the invitation) lets it join; then it reads.
    let (_ws, snap) = p.app.join(&stranger, &p.session).await;
    assert!(snap.members.iter().any(|m| m.user_id == stranger.id));
    assert_eq!(
        rest.session(&p.session).await.unwrap().version,
        snap.version
    );
    assert_eq!(rest.list_sessions(None, None).await.unwrap().len(), 1);
    assert!(rest.updates(&p.session, None, None).await.is_ok());
}

#[tokio::test]
async fn logout_and_revoke_all_end_tokens_and_close_their_sockets_with_4001() {
    let p = party().await;
    let second = p
        .app
        .rest
        .login(&p.guest.email, &p.guest.password)
        .await
        .unwrap();
    let (mut first_ws, _) = p.app.join(&p.guest, &p.session).await;
    let mut second_ws = p.app.connect().await;
    second_ws.join_snapshot(&p.session, &second.token).await;

    // Logout ends the presented token only, and its socket.
    let r = p
        .app
        .as_user(&p.guest)
        .raw(Method::POST, "/v1/auth/logout", None, &[])
        .await
        .unwrap();
    assert_eq!(r.status, 204, "{}", r.text);
    error_of(&mut first_ws, None, ErrorCode::Unauthorized).await;
    assert_eq!(first_ws.closed().await, Closed::Code(4001));
    let (status, _, _) = problem_of(p.app.as_user(&p.guest).me().await.unwrap_err());
    assert_eq!(status, 401);
    let other = p.app.rest.as_user(&second.token);
    assert!(other.me().await.is_ok(), "the other token still works");

    // Revoke-all ends every token of the account, and every socket.
    let third = p
        .app
        .rest
        .login(&p.guest.email, &p.guest.password)
        .await
        .unwrap();
    let r = other
        .raw(Method::POST, "/v1/auth/logout-all", None, &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["revoked"], 2);
    assert_eq!(second_ws.closed().await, Closed::Code(4001));
    for token in [&second.token, &third.token] {
        let (status, _, _) = problem_of(p.app.rest.as_user(token).me().await.unwrap_err());
        assert_eq!(status, 401);
    }
}

#[tokio::test]
async fn a_user_deleted_by_the_old_app_loses_its_sockets_with_4001() {
    let p = party().await;
    let (mut ws, _) = p.app.join(&p.guest, &p.session).await;
    // What Prisma's `user.delete` does once nothing else refers to it.
    sqlx::query(r#"DELETE FROM "_GroupSessionToUser" WHERE "B" = $1"#)
        .bind(&p.guest.id)
        .execute(&p.app.db)
        .await
        .unwrap();
    sqlx::query(r#"DELETE FROM "User" WHERE "id" = $1"#)
        .bind(&p.guest.id)
        .execute(&p.app.db)
        .await
        .unwrap();
    assert_eq!(ws.closed().await, Closed::Code(4001));
}

#[tokio::test]
async fn tokens_expire_when_unused_and_each_use_extends_them() {
    let app = spawn_app_with(|c| c.token_lifetime = Duration::from_secs(3)).await;
    let used = app.register("Used").await;
    let idle = app.register("Idle").await;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(900)).await;
        app.as_user(&used)
            .me()
            .await
            .expect("a used token lives on");
    }
    // 4.5 s after sign-up: the unused one is past its 3 s.
    let (status, _, _) = problem_of(app.as_user(&idle).me().await.unwrap_err());
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (status, _, _) = problem_of(app.as_user(&used).me().await.unwrap_err());
    assert_eq!(status, 401, "unused for 3 s, it expired too");
}

fn retry_after(r: &audotics_client::RawResponse) -> u64 {
    r.headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", r.headers))
}

#[tokio::test]
async fn sign_ups_sign_ins_and_sessions_are_rate_limited_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.limits.signups_per_minute = 3;
        c.limits.signins_per_minute = 30;
        c.limits.sessions_per_hour = 2;
    })
    .await;
    let mut last = None;
    for i in 0..4 {
        let body = format!(
            r#"{{"email":"{}","name":"U{i}","password":"correct horse battery"}}"#,
            unique_email("flood")
        );
        last = Some(
            app.rest
                .raw(Method::POST, "/v1/users", Some(&body), &[])
                .await
                .unwrap(),
        );
        if i < 3 {
            assert_eq!(last.as_ref().unwrap().status, 201);
        }
    }
    let r = last.unwrap();
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.problem().unwrap().code, ErrorCode::RateLimited);
    assert!(retry_after(&r) >= 1);

    // Wrong passwords back off per account after five.
    let email = {
        // Registered directly: the sign-up allowance is spent.
        let hash = audotics_hub::auth::hash_password("correct horse battery".into())
            .await
            .unwrap();
        let email = unique_email("target");
        audotics_hub::db::users::create(&app.db, &email, "Target", &hash)
            .await
            .unwrap();
        email
    };
    let attempt = |password: &'static str| {
        let body = format!(r#"{{"email":"{email}","password":"{password}"}}"#);
        let rest = app.rest.clone();
        async move {
            rest.raw(Method::POST, "/v1/auth/token", Some(&body), &[])
                .await
                .unwrap()
        }
    };
    for _ in 0..5 {
        assert_eq!(attempt("wrong password").await.status, 401);
    }
    let r = attempt("correct horse battery").await;
    assert_eq!(r.status, 429, "backing off: {}", r.text);
    assert!(retry_after(&r) >= 1);

    // Sessions per account.
    let host = {
        let r = attempt("correct horse battery");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let r = r.await;
        assert_eq!(r.status, 200, "after the backoff: {}", r.text);
        r.body["token"].as_str().unwrap().to_owned()
    };
    let rest = app.rest.as_user(&host);
    rest.create_session("one", None).await.unwrap();
    rest.create_session("two", None).await.unwrap();
    let (status, code, _) = problem_of(rest.create_session("three", None).await.unwrap_err());
    assert_eq!((status, code), (429, ErrorCode::RateLimited));
}

#[tokio::test]
async fn ops_are_rate_limited_per_account_across_its_connections() {
    let p = party_with(|c| {
        c.hub.ops_per_sec = 1000.0;
        c.hub.ops_burst = 1000.0;
        c.limits.account_ops_per_sec = 10;
    })
    .await;
    // Both on one hub: in a cluster each node keeps its own account limit.
    let mut a = Ws::connect(&p.app.rest.ws_url()).await;
    a.join_snapshot(&p.session, &p.guest.token).await;
    let mut b = Ws::connect(&p.app.rest.ws_url()).await;
    b.join_snapshot(&p.session, &p.guest.token).await;
    for i in 0..8 {
        a.interaction(&format!("a{i}"), &p.tracks[0], "like").await;
        b.interaction(&format!("b{i}"), &p.tracks[0], "like").await;
    }
    let mut limited = 0;
    for ws in [&mut a, &mut b] {
        while let Some(m) = ws.try_recv().await {
            if let ServerMsg::Error {
                code: ErrorCode::RateLimited,
                ..
            } = m
            {
                limited += 1;
            }
        }
    }
    // 16 ops against 10 for the account: each connection alone was far
    // under its own limit.
    assert!(limited >= 5, "only {limited} refused");
    // Another account is not affected.
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    host.interaction("h1", &p.tracks[0], "like").await;
    ack_of(&mut host, "h1").await;
}

#[tokio::test]
async fn readyz_answers_within_a_second_when_postgres_is_gone() {
    let app = spawn_app().await;
    let ok = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let name = app
        .db_url
        .split('?')
        .next()
        .and_then(|u| u.rsplit('/').next())
        .unwrap()
        .to_owned();
    let admin = sqlx::PgPool::connect(&cluster_url("audotics"))
        .await
        .unwrap();
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&name)
        .execute(&admin)
        .await
        .unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let r = app.http.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 503);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .execute(&admin)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let app = spawn_app().await;
    let body = format!(
        r#"{{"email":"{}","name":"x","password":"{}"}}"#,
        "a@b.c",
        "p".repeat(300 * 1024)
    );
    let r = app
        .rest
        .raw(Method::POST, "/v1/users", Some(&body), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.problem().unwrap().code, ErrorCode::TooLarge);
}

/// One op whose rows Postgres refuses, committed in a batch with others:
/// only that op fails.
#[tokio::test]
async fn a_refused_op_never_fails_the_rest_of_its_batch() {
    let p = party_with(unlimited).await;
    let (bad, slow) = (p.tracks[3].clone(), p.tracks[4].clone());
    for sql in [
        format!(
            r#"CREATE FUNCTION hub_test_refuse() RETURNS trigger AS $$
               BEGIN
                 IF NEW."trackId" = '{slow}' THEN PERFORM pg_sleep(0.5); END IF;
                 IF NEW."trackId" = '{bad}' THEN RAISE check_violation USING MESSAGE = 'refused'; END IF;
                 RETURN NEW;
               END $$ LANGUAGE plpgsql"#
        ),
        r#"CREATE TRIGGER hub_test_refuse BEFORE INSERT ON "PlaylistUpdate" FOR EACH ROW EXECUTE FUNCTION hub_test_refuse()"#.into(),
    ] {
        sqlx::query(&sql).execute(&p.app.db).await.unwrap();
    }
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    // A slow commit first, so the next ops wait and form one batch.
    host.add("slow", &slow, None).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    guest.add("g1", &p.tracks[0], None).await;
    host.add("bad", &bad, None).await;
    guest.add("g2", &p.tracks[1], None).await;
    ack_of(&mut host, "slow").await;
    error_of(&mut host, Some("bad"), ErrorCode::Unavailable).await;
    ack_of(&mut guest, "g1").await;
    ack_of(&mut guest, "g2").await;
    assert_eq!(logged_updates(&p.app, &p.playlist).await, 3);
}

/// At the most verbose log level, no line carries a token or a password.
#[tokio::test]
async fn no_secret_reaches_the_log_at_any_level() {
    let db_url = fresh_database().await;
    let mut hub = crate::process::HubProcess::start_with(&db_url, "trace", &[]);
    let email = unique_email("secret");
    let r = hub.rest.register(&email, "Secret", PASSWORD).await.unwrap();
    let me = hub.rest.as_user(&r.token);
    let session = me.create_session("Quiet", None).await.unwrap().session.id;
    me.me().await.unwrap();
    let login = hub.rest.login(&email, PASSWORD).await.unwrap();
    let mut ws = Ws::connect(&hub.ws).await;
    ws.join_snapshot(&session, &login.token).await;
    ws.interaction("r1", "no-such-track", "like").await;
    error_of(&mut ws, Some("r1"), ErrorCode::NotFound).await;
    hub.terminate();
    let log = hub.log.lock().unwrap().join("\n");
    assert!(
        log.len() > 1000,
        "trace logging was on: {} bytes",
        log.len()
    );
    for secret in [r.token.as_str(), login.token.as_str(), PASSWORD] {
        assert!(!log.contains(secret), "a secret in the log");
    }
}

/// `serve` on a port that is taken exits with an error and leaves no
/// private Postgres running behind it.
#[test]
fn serve_on_a_taken_port_fails_and_starts_no_postgres() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_audotics-hub"))
        .args(["serve", "--bind", &addr, "--data-dir"])
        .arg(dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .expect("run the hub binary");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("binding"), "{stderr}");
    let pid_file = dir.path().join("postgres").join("postmaster.pid");
    assert!(!pid_file.exists(), "a private Postgres was left running");
}
