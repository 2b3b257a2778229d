//! Abuse limits and slow listeners over real sockets.
//!
//! Every test runs the real hub (real Postgres, real loopback sockets) with
//! the `HubConfig` knob it is about turned down, so that each limit is hit in
//! well under a few seconds.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use audotics_client::{msg, Closed, Ws};
use audotics_protocol::model::{Snapshot, TrackBody};
use audotics_protocol::{ClientMsg, ErrorCode, OpKind, ServerMsg};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::helpers::*;

/// `GET /v1/sessions/{id}` as `user` (a typed call checks the 200).
async fn rest_session(app: &TestApp, user: &TestUser, session: &str) -> Snapshot {
    app.as_user(user)
        .session(session)
        .await
        .unwrap_or_else(|e| panic!("GET session: {e}"))
}

/// (version, entry ids in queue order) as REST reports them.
async fn rest_state(app: &TestApp, user: &TestUser, session: &str) -> (i64, Vec<String>) {
    let s = rest_session(app, user, session).await;
    let ids = s.queue.into_iter().map(|e| e.entry_id).collect();
    (s.version, ids)
}

/// `/metrics` as `series → value` (`name{labels}` exactly as exposed).
/// Every series of `/metrics`, summed over the app's nodes (one, or a
/// cluster's: the counts a test checks are the whole service's).
async fn metrics(app: &TestApp) -> HashMap<String, f64> {
    let mut all: HashMap<String, f64> = HashMap::new();
    for node in app.nodes() {
        let res = node.http.get(node.url("/metrics")).send().await.unwrap();
        assert_eq!(res.status(), 200, "GET /metrics");
        let text = res.text().await.unwrap();
        let series = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_owned(), v.parse::<f64>().ok()?))
            });
        for (k, v) in series {
            *all.entry(k).or_default() += v;
        }
    }
    all
}

async fn metric(app: &TestApp, series: &str) -> f64 {
    metrics(app).await.get(series).copied().unwrap_or(0.0)
}

/// Poll `series` until `ok` holds (or panic after `within`).
async fn wait_metric(app: &TestApp, series: &str, within: Duration, ok: impl Fn(f64) -> bool) {
    let start = Instant::now();
    loop {
        let v = metric(app, series).await;
        if ok(v) {
            return;
        }
        assert!(
            start.elapsed() < within,
            "{series} is still {v} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Small valid track metadata under `spotify_id`.
fn small_track(spotify_id: &str) -> TrackBody {
    TrackBody {
        spotify_id: spotify_id.to_owned(),
        name: "Name".to_owned(),
        artists: vec!["A".to_owned()],
        album: "Album".to_owned(),
        popularity: Some(10),
        duration_ms: None,
        cover_url: None,
    }
}

#[derive(Clone, Copy, Debug)]
enum Who {
    Host,
    Guest,
}

#[tokio::test]
async fn malformed_frames_after_join_get_exact_errors_and_change_nothing() {
    let p = party_with(unlimited).await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let (_, e0) = host.add_acked("h0", &p.tracks[0]).await;
    let (_, e1) = host.add_acked("h1", &p.tracks[1]).await;
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    let before = rest_state(&p.app, &p.host, &p.session).await;
    assert_eq!(before, (2, vec![e0.clone(), e1.clone()]));
    let t = &p.tracks[0];
    let unknown_uuid = uuid::Uuid::new_v4().to_string();
    let long_req = "r".repeat(65);
    let meta = |f: &dyn Fn(&mut TrackBody)| {
        let mut m = small_track("ghost0");
        f(&mut m);
        m
    };
    let empty_artists = meta(&|m| m.artists = vec![]);
    let many_artists = meta(&|m| m.artists = vec!["A".into(); 51]);
    let long_name = meta(&|m| m.name = "n".repeat(501));
    let control_name = meta(&|m| m.name = "a\u{0}b".into());
    let bad_spotify = meta(&|m| m.spotify_id = "bad id".into());
    let too_popular = meta(&|m| m.popularity = Some(101));
    let empty_album = meta(&|m| m.album = " ".into());
    let mut typed_spotify = json!(small_track("ghost0"));
    typed_spotify["spotifyId"] = json!(5);
    let long_artist = meta(&|m| m.artists = vec!["a".repeat(201)]);
    // Protocol messages (valid by their schema, refused for what they say)
    // are built as `ClientMsg`s; the rest is raw text on purpose: not JSON,
    // not an object, unknown type, wrong or missing field types, and what the
    // schema itself refuses (req length, both or neither of trackId/track,
    // interaction kind pattern).
    let m = |c: ClientMsg| msg::text(&c);
    use Who::*;
    // (sender, frame, echoed req, code, a word the message must contain:
    // the field at fault, or what is wrong).
    #[rustfmt::skip]
    let table: Vec<(Who, String, Option<&str>, &str, &str)> = vec![
        (Host, "{nope".into(), None, "invalid", "JSON"),
        (Host, "".into(), None, "invalid", "JSON"),
        (Host, "[1,2]".into(), None, "invalid", "object"),
        (Host, "null".into(), None, "invalid", "object"),
        (Host, r#""add""#.into(), None, "invalid", "object"),
        (Host, json!({"type": "warp", "req": "m1"}).to_string(), Some("m1"), "invalid", "type"),
        (Host, json!({"req": "m2", "trackId": t}).to_string(), Some("m2"), "invalid", "type"),
        (Host, json!({"type": 5, "req": "m3"}).to_string(), Some("m3"), "invalid", "type"),
        (Host, json!({"type": "add", "req": "m4", "trackId": t, "index": "x"}).to_string(), Some("m4"), "invalid", "index"),
        (Host, json!({"type": "add", "req": "m5", "trackId": t, "index": -1}).to_string(), Some("m5"), "invalid", "index"),
        (Host, json!({"type": "add", "req": "m6", "trackId": 7}).to_string(), Some("m6"), "invalid", "trackId"),
        (Host, json!({"type": "reorder", "req": "m7", "entryId": e0, "toIndex": -1}).to_string(), Some("m7"), "invalid", "toIndex"),
        (Host, r#"{"type":"reorder","req":"m8","entryId":"x","toIndex":18446744073709551616}"#.into(), Some("m8"), "invalid", "toIndex"),
        (Host, json!({"type": "remove", "req": "m9", "entryId": 5}).to_string(), Some("m9"), "invalid", "entryId"),
        (Host, json!({"type": "add", "trackId": t}).to_string(), None, "invalid", "req"),
        (Host, json!({"type": "add", "req": 7, "trackId": t}).to_string(), None, "invalid", "req"),
        (Host, json!({"type": "add", "req": "", "trackId": t}).to_string(), None, "invalid", "req"),
        (Host, json!({"type": "add", "req": long_req, "trackId": t}).to_string(), None, "invalid", "req"),
        (Host, json!({"type": "add", "req": "m10", "trackId": t, "track": small_track("ghost1")}).to_string(), Some("m10"), "invalid", "trackId"),
        (Host, json!({"type": "add", "req": "m11"}).to_string(), Some("m11"), "invalid", "trackId"),
        (Host, m(msg::add("m12", t, Some(3))), Some("m12"), "invalid", "index"),
        (Host, m(msg::add_track("m13", small_track("ghost2"), Some(3))), Some("m13"), "invalid", "index"),
        (Host, m(msg::reorder("m14", &e0, 2, None)), Some("m14"), "invalid", "toIndex"),
        (Host, m(msg::reorder("m15", &unknown_uuid, 0, None)), Some("m15"), "not_found", "entry"),
        (Host, m(msg::reorder("m16", "not-a-uuid", 0, None)), Some("m16"), "not_found", "entry"),
        (Host, m(msg::reorder("m17", &e1, 0, Some(99))), Some("m17"), "conflict", "baseVersion"),
        (Host, m(msg::remove("m18", &unknown_uuid)), Some("m18"), "not_found", "entry"),
        (Host, m(msg::remove("m19", "not-a-uuid")), Some("m19"), "not_found", "entry"),
        (Host, m(msg::add("m20", &unknown_uuid, None)), Some("m20"), "not_found", "track"),
        (Host, m(msg::add("m21", "nope", None)), Some("m21"), "not_found", "track"),
        (Host, m(msg::add_track("m22", empty_artists, None)), Some("m22"), "invalid", "artists"),
        (Host, m(msg::add_track("m23", many_artists, None)), Some("m23"), "invalid", "artists"),
        (Host, m(msg::add_track("m24", long_artist, None)), Some("m24"), "invalid", "artists"),
        (Host, m(msg::add_track("m25", long_name, None)), Some("m25"), "invalid", "name"),
        (Host, m(msg::add_track("m26", control_name, None)), Some("m26"), "invalid", "name"),
        (Host, m(msg::add_track("m27", bad_spotify, None)), Some("m27"), "invalid", "spotifyId"),
        (Host, m(msg::add_track("m28", too_popular, None)), Some("m28"), "invalid", "popularity"),
        (Host, m(msg::add_track("m29", empty_album, None)), Some("m29"), "invalid", "album"),
        (Host, json!({"type": "add", "req": "m30", "track": typed_spotify}).to_string(), Some("m30"), "invalid", "spotifyId"),
        (Host, json!({"type": "interaction", "req": "m31", "trackId": t, "kind": "LIKE!"}).to_string(), Some("m31"), "invalid", "kind"),
        (Host, json!({"type": "interaction", "req": "m32", "trackId": t, "kind": ""}).to_string(), Some("m32"), "invalid", "kind"),
        (Host, json!({"type": "interaction", "req": "m33", "trackId": t, "kind": 3}).to_string(), Some("m33"), "invalid", "kind"),
        (Host, m(msg::interaction("m34", "nope", "like")), Some("m34"), "not_found", "track"),
        (Host, m(msg::join(&p.session, &p.host.token, None)), None, "invalid", "join"),
        (Guest, m(msg::reorder("g1", &e0, 1, None)), Some("g1"), "forbidden", "host"),
        (Guest, m(msg::remove("g2", &e1)), Some("g2"), "forbidden", "host"),
        (Guest, m(msg::remove("g3", &unknown_uuid)), Some("g3"), "not_found", "entry"),
        (Guest, m(msg::add("g4", t, Some(99))), Some("g4"), "invalid", "index"),
        (Guest, m(msg::join(&p.session, &p.guest.token, None)), None, "invalid", "join"),
    ];
    for (who, frame, req, code, word) in &table {
        let c = match who {
            Host => &mut host,
            Guest => &mut guest,
        };
        c.send_text(frame).await;
        // The next frame answers this one: the connection stayed open.
        let message = match c.recv_np().await {
            ServerMsg::Error {
                req: r,
                code: got,
                message,
            } => {
                assert_eq!(
                    (r.as_deref(), got.as_str()),
                    (*req, *code),
                    "{who:?} sent {frame:.200}: {message}"
                );
                message
            }
            other => panic!("{who:?} sent {frame:.200}: expected error {code}, got {other:?}"),
        };
        assert!(
            message.contains(word),
            "{who:?} sent {frame:.200}: message `{message}` does not mention `{word}`"
        );
    }
    // Nothing changed: same version and queue, no log rows, no tracks made.
    assert_eq!(rest_state(&p.app, &p.host, &p.session).await, before);
    assert_eq!(logged_updates(&p.app, &p.playlist).await, 2);
    assert_eq!(logged_interactions(&p.app, &p.session).await, 0);
    for ghost in ["ghost0", "ghost1", "ghost2"] {
        let n = count(
            &p.app,
            r#"SELECT count(*) FROM "Track" WHERE "spotifyId" = $1"#,
            ghost,
        )
        .await;
        assert_eq!(n, 0, "a refused add left track {ghost} behind");
    }
    // Both connections still work, and the session goes on from version 2.
    host.add("h2", t, Some(2)).await;
    assert_eq!(host.applied("h2").await, 3);
    guest.add_track("g5", small_track("real1"), Some(0)).await;
    match guest.recv_np().await {
        ServerMsg::Update { version: 3, .. } => {}
        other => panic!("expected the host's update 3, got {other:?}"),
    }
    assert_eq!(guest.applied("g5").await, 4);
    p.app.stop().await;
}

#[tokio::test]
async fn ops_before_join_get_join_first_with_req_echoed() {
    let p = party_with(|_| {}).await;
    let mut c = p.app.connect().await;
    let t = &p.tracks[0];
    let e = uuid::Uuid::new_v4().to_string();
    let frames = [
        (msg::add("p1", t, None), Some("p1")),
        (msg::remove("p2", &e), Some("p2")),
        (msg::reorder("p3", &e, 0, None), Some("p3")),
        (msg::interaction("p4", t, "like"), Some("p4")),
        (msg::leave(), None),
    ];
    for (f, req) in &frames {
        c.send(f).await;
        let message = c.expect_error(*req, ErrorCode::Invalid).await;
        assert!(message.contains("join first"), "{f:?}: {message}");
    }
    // Bad frames before join are answered like after it.
    c.send_text("{nope").await;
    c.expect_error(None, ErrorCode::Invalid).await;
    c.send_text(&json!({"type": "warp", "req": "p5"}).to_string())
        .await;
    c.expect_error(Some("p5"), ErrorCode::Invalid).await;
    // The connection is still usable: the join works and nothing was applied.
    c.join(&p.session, &p.guest.token, None).await;
    match c.recv_np().await {
        ServerMsg::Snapshot(s) => {
            assert_eq!(s.version, 0);
            assert!(s.queue.is_empty());
        }
        other => panic!("expected snapshot, got {other:?}"),
    }
    assert_eq!(logged_updates(&p.app, &p.playlist).await, 0);
    assert_eq!(logged_interactions(&p.app, &p.session).await, 0);
    p.app.stop().await;
}

#[tokio::test]
async fn join_timeout_closes_4009_and_frames_before_join_do_not_reset_it() {
    let p = party_with(|c| c.hub.join_timeout = Duration::from_millis(300)).await;
    // An idle connection.
    let started = Instant::now();
    let mut idle = p.app.connect().await;
    assert_eq!(idle.closed().await, Closed::Code(4009));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    // A chatty connection that never joins: its frames are answered, but
    // they do not restart the timer (it is closed long before it goes quiet).
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/v1/ws", p.app.addr))
        .await
        .unwrap();
    let (mut tx, mut rx) = ws.split();
    let track = p.tracks[0].clone();
    let chatter = tokio::spawn(async move {
        for i in 0..30 {
            let f = msg::add(&format!("c{i}"), &track, None);
            if tx.send(Message::text(msg::text(&f))).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let started = Instant::now();
    let mut answered = 0;
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.next())
            .await
            .expect("the chatty connection was never closed")
        {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                assert_eq!(
                    (v["type"].as_str(), v["code"].as_str()),
                    (Some("error"), Some("invalid")),
                    "{v}"
                );
                answered += 1;
            }
            Some(Ok(Message::Close(f))) => {
                break Closed::Code(f.map_or(1005, |f| u16::from(f.code)))
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break Closed::Dropped,
        }
    };
    let took = started.elapsed();
    chatter.abort();
    assert_eq!(end, Closed::Code(4009));
    assert!(answered >= 1, "no frame before join was answered");
    assert!(
        took < Duration::from_millis(2000),
        "closed only after {took:?}"
    );
    // A prompt join is unaffected by the short timer.
    let (mut c, _) = p.app.join(&p.guest, &p.session).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.add_acked("late", &p.tracks[0]).await.0, 1);
    p.app.stop().await;
}

#[tokio::test]
async fn binary_frame_closes_1003() {
    let p = party_with(|_| {}).await;
    let (mut c, _) = p.app.join(&p.guest, &p.session).await;
    c.send_raw(Message::binary(br#"{"type":"leave"}"#.to_vec()))
        .await;
    assert_eq!(c.closed().await, Closed::Code(1003));
    p.app.stop().await;
}

/// A text message of exactly `len` bytes: a JSON object padded with spaces.
fn padded(mut s: String, len: usize) -> String {
    assert!(s.len() <= len);
    s.insert_str(1, &" ".repeat(len - s.len()));
    assert_eq!(s.len(), len);
    s
}

#[tokio::test]
async fn a_message_over_64_kib_closes_1009_and_one_at_the_limit_is_read() {
    const LIMIT: usize = 65_536;
    let p = party_with(|_| {}).await;
    let (mut c, _) = p.app.join(&p.guest, &p.session).await;
    // Exactly at the limit: read and answered.
    let warp = json!({"type": "warp", "req": "edge1"}).to_string();
    c.send_text(&padded(warp, LIMIT)).await;
    c.expect_error(Some("edge1"), ErrorCode::Invalid).await;
    c.send_text(&"x".repeat(LIMIT)).await;
    c.expect_error(None, ErrorCode::Invalid).await;
    let add = msg::text(&msg::add("edge2", &p.tracks[0], None));
    c.send_text(&padded(add, LIMIT)).await;
    assert_eq!(c.applied("edge2").await, 1);
    // One byte more: close 1009, and the op in it is not applied.
    let add = msg::text(&msg::add("edge3", &p.tracks[1], None));
    c.send_text(&padded(add, LIMIT + 1)).await;
    assert_eq!(c.closed().await, Closed::Code(1009));
    assert_eq!(logged_updates(&p.app, &p.playlist).await, 1);
    p.app.stop().await;
}

#[tokio::test]
async fn ping_flood_closes_4029_but_a_few_pings_are_fine() {
    let p = party_with(|_| {}).await;
    let (mut c, _) = p.app.join(&p.guest, &p.session).await;
    for _ in 0..10 {
        c.send_raw(Message::Ping(b"hi".to_vec().into())).await;
    }
    assert_eq!(c.add_acked("ok", &p.tracks[0]).await.0, 1);
    for _ in 0..200 {
        c.send_raw(Message::Ping(b"hi".to_vec().into())).await;
    }
    assert_eq!(c.closed().await, Closed::Code(4029));
    p.app.stop().await;
}

#[tokio::test]
async fn rate_limit_refuses_with_req_then_closes_4029() {
    let p = party_with(|c| {
        c.hub.ops_per_sec = 2.0;
        c.hub.ops_burst = 3.0;
        c.hub.rate_strikes = 5;
    })
    .await;
    let (mut c, _) = p.app.join(&p.guest, &p.session).await;
    // A burst of 6: the bucket holds 3.
    for i in 1..=6 {
        c.add(&format!("r{i}"), &p.tracks[0], None).await;
    }
    let (mut acks, mut limited, mut updates) = (HashMap::new(), HashSet::new(), 0);
    while acks.len() + limited.len() < 6 {
        match c.recv_np().await {
            ServerMsg::Update { .. } => updates += 1,
            ServerMsg::Ack { req, version } => {
                acks.insert(req, version);
            }
            ServerMsg::Error {
                req: Some(r),
                code,
                message,
            } => {
                assert_eq!(code.as_str(), "rate_limited", "{r}: {message}");
                limited.insert(r);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(updates, 3);
    assert_eq!(
        acks,
        HashMap::from([("r1".into(), 1), ("r2".into(), 2), ("r3".into(), 3)])
    );
    assert_eq!(
        limited,
        HashSet::from(["r4".to_owned(), "r5".into(), "r6".into()])
    );
    assert_eq!(rest_state(&p.app, &p.guest, &p.session).await.0, 3);
    // Within the rate, ops are applied again (and the strikes start over).
    tokio::time::sleep(Duration::from_millis(600)).await;
    c.add("r7", &p.tracks[1], None).await;
    assert_eq!(c.applied("r7").await, 4);
    // Sustained abuse: 5 refusals in a row, then close 4029.
    for i in 1..=8 {
        // Raw, so a send after the hub closed is not an error.
        let add = msg::add(&format!("x{i}"), &p.tracks[2], None);
        c.send_raw(Message::text(msg::text(&add))).await;
    }
    for i in 1..=5 {
        c.expect_error(Some(&format!("x{i}")), ErrorCode::RateLimited)
            .await;
    }
    assert_eq!(c.closed().await, Closed::Code(4029));
    assert_eq!(rest_state(&p.app, &p.guest, &p.session).await.0, 4);
    assert_eq!(logged_updates(&p.app, &p.playlist).await, 4);
    assert_eq!(
        metric(
            &p.app,
            r#"audotics_hub_ops_refused_total{code="rate_limited"}"#
        )
        .await,
        8.0
    );
    p.app.stop().await;
}

#[tokio::test]
async fn queue_cap_refuses_the_next_add_with_too_large() {
    let p = party_with(|c| c.hub.queue_cap = 3).await;
    let (mut c, _) = p.app.join(&p.host, &p.session).await;
    let mut entries = Vec::new();
    for i in 0..3 {
        entries.push(c.add_acked(&format!("q{i}"), &p.tracks[i]).await.1);
    }
    c.add("q3", &p.tracks[0], None).await;
    c.expect_error(Some("q3"), ErrorCode::TooLarge).await;
    c.add_track("q4", small_track("capped"), Some(0)).await;
    c.expect_error(Some("q4"), ErrorCode::TooLarge).await;
    assert_eq!(
        rest_state(&p.app, &p.host, &p.session).await,
        (3, entries.clone())
    );
    assert_eq!(logged_updates(&p.app, &p.playlist).await, 3);
    assert_eq!(
        count(
            &p.app,
            r#"SELECT count(*) FROM "Track" WHERE "spotifyId" = $1"#,
            "capped"
        )
        .await,
        0
    );
    // Room again after a remove; the refused req is judged afresh.
    c.remove("q5", &entries[0]).await;
    assert_eq!(c.applied("q5").await, 4);
    c.add("q3", &p.tracks[0], None).await;
    assert_eq!(c.applied("q3").await, 5);
    p.app.stop().await;
}

/// Join over a socket whose receive buffer is tiny, and return it unread.
async fn join_slow(app: &TestApp, user: &TestUser, session: &str) -> WebSocketStream<TcpStream> {
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let tcp = sock.connect(app.addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{}/v1/ws", app.addr), tcp)
        .await
        .expect("slow ws handshake");
    let mut ws = Ws::from_stream(ws);
    ws.join(session, &user.token, None).await;
    ws.into_inner()
}

/// An `add` of a track with the largest metadata allowed (~10 KB frames).
fn heavy_add(i: usize) -> ClientMsg {
    let artists: Vec<String> = (0..50)
        .map(|a| format!("{a:02}{}", "a".repeat(188)))
        .collect();
    let track = TrackBody {
        spotify_id: format!("heavy{i}"),
        name: format!("{i:05}{}", "n".repeat(495)),
        artists,
        album: "b".repeat(500),
        popularity: Some(50),
        duration_ms: None,
        cover_url: None,
    };
    msg::add_track(&format!("w{i}"), track, None)
}

#[tokio::test]
async fn a_slow_listener_is_cut_off_with_4008_and_never_slows_the_session() {
    let p = party_with(|c| {
        unlimited(c);
        c.hub.outbound_frames = 64;
        c.hub.outbound_bytes = 256 * 1024;
    })
    .await;
    let slow_user = p.app.register("Sloane").await;
    // The healthy listener joins first and sees the others come online.
    let (mut healthy, _) = p.app.join(&p.guest, &p.session).await;
    let slow = join_slow(&p.app, &slow_user, &p.session).await;
    match healthy.recv().await {
        ServerMsg::Presence {
            user_id, online, ..
        } => assert_eq!((user_id.as_str(), online), (slow_user.id.as_str(), true)),
        other => panic!("expected the slow user's presence, got {other:?}"),
    }
    let (mut writer, _) = p.app.join(&p.host, &p.session).await;
    // The healthy listener reads everything, checking order as it goes.
    let (total_tx, total_rx) = tokio::sync::watch::channel(usize::MAX);
    let reader = tokio::spawn(async move {
        let mut entries: Vec<String> = Vec::new();
        let mut total_rx = total_rx;
        while entries.len() < *total_rx.borrow_and_update() {
            let m = tokio::select! {
                m = healthy.recv() => m,
                _ = total_rx.changed() => continue,
            };
            match m {
                ServerMsg::Update {
                    version, change, ..
                } => {
                    assert_eq!(version as usize, entries.len() + 1, "gap or reorder");
                    assert_eq!(change.op, OpKind::Add);
                    entries.push(change.entry_id.unwrap());
                }
                ServerMsg::Presence { .. } => {}
                other => panic!("healthy listener got {other:?}"),
            }
        }
        (healthy, entries)
    });
    // The writer keeps a window of ops in flight, in rounds, until the slow
    // listener has been cut off (several MB must be queued for it first).
    const WINDOW: usize = 8;
    const ROUND: usize = 50;
    const MAX_OPS: usize = 1000;
    let (mut sent, mut acked) = (0usize, 0usize);
    let mut versions = Vec::new();
    let started = Instant::now();
    loop {
        let round_end = (sent + ROUND).min(MAX_OPS);
        while acked < round_end {
            while sent < round_end && sent - acked < WINDOW {
                writer.send(&heavy_add(sent)).await;
                sent += 1;
            }
            match writer.recv().await {
                ServerMsg::Ack { req, version } => {
                    assert_eq!(req, format!("w{acked}"), "acks come in order");
                    versions.push(version);
                    acked += 1;
                }
                ServerMsg::Update { .. } | ServerMsg::Presence { .. } => {}
                other => panic!("writer got {other:?}"),
            }
        }
        let cut = metric(&p.app, "audotics_hub_slow_listener_disconnects_total").await;
        if cut >= 1.0 || sent >= MAX_OPS {
            break;
        }
    }
    let total = sent;
    assert_eq!(versions, (1..=total as i64).collect::<Vec<_>>());
    assert!(
        metric(&p.app, "audotics_hub_slow_listener_disconnects_total").await >= 1.0,
        "{total} updates of ~10 KB did not overflow the slow listener"
    );
    total_tx.send(total).unwrap();
    let (_healthy, entries) = tokio::time::timeout(Duration::from_secs(15), reader)
        .await
        .expect("healthy listener fell behind")
        .unwrap();
    assert_eq!(entries.len(), total);
    eprintln!(
        "slow listener cut off after {total} ops of ~10 KB in {:?}",
        started.elapsed()
    );
    // The hub drops the slow connection by itself, without it reading.
    wait_metric(
        &p.app,
        "audotics_hub_connections",
        Duration::from_secs(5),
        |v| v == 2.0,
    )
    .await;
    assert_eq!(metric(&p.app, "audotics_hub_listeners").await, 2.0);
    // Reading it now: whatever was in flight, then 4008 or the socket's end.
    let mut slow = slow;
    let mut last_seen = -1i64;
    let end = loop {
        let m = tokio::time::timeout(Duration::from_secs(10), slow.next())
            .await
            .expect("the slow connection is still open");
        match m {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                match v["type"].as_str() {
                    Some("snapshot") => last_seen = v["version"].as_i64().unwrap(),
                    Some("update") => {
                        let version = v["version"].as_i64().unwrap();
                        assert_eq!(version, last_seen + 1, "gap before the cut");
                        last_seen = version;
                    }
                    _ => {}
                }
            }
            Some(Ok(Message::Close(f))) => {
                break Closed::Code(f.map_or(1005, |f| u16::from(f.code)))
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break Closed::Dropped,
        }
    };
    assert!(
        matches!(end, Closed::Code(4008) | Closed::Dropped),
        "slow connection ended with {end:?}"
    );
    assert!(last_seen >= 0, "the slow listener never got its snapshot");
    assert!((last_seen as usize) < total);
    // It resumes from what it saw: the missed updates exactly, or a snapshot.
    let mut back = p.app.connect().await;
    back.join(&p.session, &slow_user.token, Some(last_seen))
        .await;
    match back.recv_np().await {
        ServerMsg::Resumed { version } => {
            assert_eq!(version, total as i64);
            for v in last_seen + 1..=total as i64 {
                match back.recv_np().await {
                    ServerMsg::Update {
                        version, change, ..
                    } => {
                        assert_eq!(version, v);
                        assert_eq!(change.entry_id.as_ref(), Some(&entries[v as usize - 1]));
                    }
                    other => panic!("expected replayed update {v}, got {other:?}"),
                }
            }
        }
        ServerMsg::Snapshot(s) => {
            assert_eq!(s.version, total as i64);
            let ids: Vec<_> = s.queue.iter().map(|e| e.entry_id.clone()).collect();
            assert_eq!(ids, entries);
        }
        other => panic!("expected resumed or snapshot, got {other:?}"),
    }
    // A short resume is served by replay, exactly.
    let mut again = p.app.connect().await;
    again
        .join(&p.session, &slow_user.token, Some((total - 3) as i64))
        .await;
    assert!(
        matches!(again.recv_np().await, ServerMsg::Resumed { version } if version == total as i64)
    );
    for v in total - 2..=total {
        match again.recv_np().await {
            ServerMsg::Update {
                version, change, ..
            } => {
                assert_eq!(version, v as i64);
                assert_eq!(change.entry_id.as_ref(), Some(&entries[v - 1]));
            }
            other => panic!("expected replayed update {v}, got {other:?}"),
        }
    }
    // Both resumed connections stay joined: the writer's next op reaches them.
    writer.add("after", &p.tracks[0], None).await;
    for c in [&mut back, &mut again] {
        match c.recv_np().await {
            ServerMsg::Update { version, .. } => assert_eq!(version, total as i64 + 1),
            other => panic!("expected the next update, got {other:?}"),
        }
    }
    p.app.stop().await;
}

#[tokio::test]
async fn a_snapshot_larger_than_the_socket_write_buffer_is_delivered() {
    let p = party_with(unlimited).await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    // 40 entries of ~10 KB: a snapshot of ~400 KB, in one frame.
    const N: usize = 40;
    let (mut sent, mut acked) = (0, 0);
    while acked < N {
        while sent < N && sent - acked < 8 {
            host.send(&heavy_add(sent)).await;
            sent += 1;
        }
        match host.recv_np().await {
            ServerMsg::Ack { version, .. } => {
                acked += 1;
                assert_eq!(version, acked as i64);
            }
            ServerMsg::Update { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let (mut guest, snap) = p.app.join(&p.guest, &p.session).await;
    assert_eq!((snap.version, snap.queue.len()), (N as i64, N));
    assert!(
        serde_json::to_string(&snap).unwrap().len() > 256 * 1024,
        "the snapshot is not big enough to prove anything"
    );
    // The connection is healthy afterwards.
    host.add_acked("small", &p.tracks[0]).await;
    assert!(
        matches!(guest.recv_np().await, ServerMsg::Update { version, .. } if version == N as i64 + 1)
    );
    p.app.stop().await;
}

#[tokio::test]
async fn interactions_are_broadcast_acked_with_the_version_and_stored_once() {
    let p = party_with(|_| {}).await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    host.add_acked("h1", &p.tracks[0]).await;
    assert!(matches!(
        guest.recv_np().await,
        ServerMsg::Update { version: 1, .. }
    ));
    guest.interaction("i1", &p.tracks[1], "like").await;
    // Everyone (the sender too) gets the reaction, in exactly this shape.
    for c in [&mut host, &mut guest] {
        let v = loop {
            let v = c.recv_value().await;
            if v["type"] != "presence" {
                break v;
            }
        };
        let keys: HashSet<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            HashSet::from(["type", "userId", "trackId", "kind", "at"]),
            "{v}"
        );
        assert_eq!(v["type"], "interaction");
        assert_eq!(v["userId"], p.guest.id.as_str());
        assert_eq!(v["trackId"], p.tracks[1].as_str());
        assert_eq!(v["kind"], "like");
        chrono::DateTime::parse_from_rfc3339(v["at"].as_str().unwrap()).expect("RFC 3339 at");
    }
    // Then the sender's ack, carrying the current version (no new one).
    assert!(matches!(guest.recv_np().await, ServerMsg::Ack { ref req, version: 1 } if req == "i1"));
    let row: (String, String, String, Option<String>, Option<String>) = sqlx::query_as(
        r#"SELECT "type", "userId", "trackId", "hubSessionId", "hubReq" FROM "TrackInteraction" WHERE "hubSessionId" = $1"#,
    )
    .bind(&p.session)
    .fetch_one(&p.app.db)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "like".into(),
            p.guest.id.clone(),
            p.tracks[1].clone(),
            Some(p.session.clone()),
            Some("i1".into())
        )
    );
    assert_eq!(rest_state(&p.app, &p.host, &p.session).await.0, 1);
    // The version moves on; a re-send of i1 gets the original ack, no row,
    // and no second broadcast.
    host.add_acked("h2", &p.tracks[2]).await;
    assert!(matches!(
        guest.recv_np().await,
        ServerMsg::Update { version: 2, .. }
    ));
    guest.interaction("i1", &p.tracks[1], "skip").await;
    assert!(matches!(guest.recv_np().await, ServerMsg::Ack { ref req, version: 1 } if req == "i1"));
    assert_eq!(logged_interactions(&p.app, &p.session).await, 1);
    host.add_acked("h3", &p.tracks[0]).await;
    assert!(matches!(
        guest.recv_np().await,
        ServerMsg::Update { version: 3, .. }
    ));
    p.app.stop().await;
}

#[tokio::test]
async fn an_idle_actor_stops_and_a_new_join_restarts_it_unchanged() {
    let p = party_with(|c| c.hub.idle_timeout = Duration::from_millis(200)).await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let (_, e) = host.add_acked("h1", &p.tracks[0]).await;
    // With a listener the actor stays, past the idle timeout.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(metric(&p.app, "audotics_hub_live_sessions").await, 1.0);
    let (_, e2) = host.add_acked("h2", &p.tracks[1]).await;
    drop(host);
    wait_metric(
        &p.app,
        "audotics_hub_live_sessions",
        Duration::from_secs(5),
        |v| v == 0.0,
    )
    .await;
    assert_eq!(metric(&p.app, "audotics_hub_listeners").await, 0.0);
    // REST still answers from the database.
    assert_eq!(
        rest_state(&p.app, &p.host, &p.session).await,
        (2, vec![e.clone(), e2.clone()])
    );
    let (mut guest, snap) = p.app.join(&p.guest, &p.session).await;
    assert_eq!(snap.version, 2);
    let ids: Vec<_> = snap.queue.iter().map(|q| q.entry_id.clone()).collect();
    assert_eq!(ids, vec![e, e2]);
    assert_eq!(metric(&p.app, "audotics_hub_live_sessions").await, 1.0);
    assert_eq!(guest.add_acked("g1", &p.tracks[2]).await.0, 3);
    // Exactly-once memory came back with it.
    guest.add("g1", &p.tracks[0], None).await;
    assert!(matches!(
        guest.recv_np().await,
        ServerMsg::Ack { version: 3, .. }
    ));
    p.app.stop().await;
}

#[tokio::test]
async fn malformed_upgrade_requests_are_refused_with_problem_json() {
    let p = party_with(|_| {}).await;
    let url = format!("http://{}/v1/ws", p.app.addr);
    // A plain GET: no upgrade headers.
    let res = p.app.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "invalid", "{body}");
    // An upgrade request with the sample key of RFC 6455 §1.3.
    let upgrade = |connection: &'static str, version: &'static str| {
        p.app
            .http
            .get(&url)
            .header("connection", connection)
            .header("upgrade", "websocket")
            .header("sec-websocket-version", version)
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .send()
    };
    // The right headers but an old protocol version.
    let res = upgrade("keep-alive, Upgrade", "8").await.unwrap();
    assert_eq!(res.status(), 426);
    assert_eq!(res.headers()["sec-websocket-version"], "13");
    // And the sample handshake is answered with its accept key.
    let res = upgrade("Upgrade", "13").await.unwrap();
    assert_eq!(res.status(), 101);
    assert_eq!(
        res.headers()["sec-websocket-accept"],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[tokio::test]
async fn the_connection_cap_refuses_upgrades_with_503_until_one_closes() {
    let p = party_with(|c| c.hub.max_connections = 2).await;
    // The cap is per hub: every connection goes to the same one.
    let ws_url = p.app.rest.ws_url();
    let mut first = Ws::connect(&ws_url).await;
    first.join_snapshot(&p.session, &p.host.token).await;
    let second = Ws::connect(&ws_url).await;
    match Ws::try_connect(&p.app.rest.ws_url()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 503);
            let body: Value = serde_json::from_slice(res.body().as_deref().unwrap_or_default())
                .expect("problem+json body");
            assert_eq!(body["code"], "unavailable", "{body}");
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("a third connection was accepted over the cap of 2"),
    }
    assert_eq!(
        metric(&p.app, "audotics_hub_connections_refused_total").await,
        1.0
    );
    assert_eq!(metric(&p.app, "audotics_hub_connections").await, 2.0);
    // REST is not affected by the cap.
    rest_session(&p.app, &p.host, &p.session).await;
    drop(second);
    wait_metric(
        &p.app,
        "audotics_hub_connections",
        Duration::from_secs(5),
        |v| v == 1.0,
    )
    .await;
    let mut third = Ws::connect(&ws_url).await;
    third.join_snapshot(&p.session, &p.guest.token).await;
    first.add_acked("h1", &p.tracks[0]).await;
    assert!(matches!(
        third.recv_np().await,
        ServerMsg::Update { version: 1, .. }
    ));
    p.app.stop().await;
}

#[tokio::test]
async fn a_client_close_is_answered_and_the_listener_goes_offline() {
    let p = party_with(|_| {}).await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    host.recv().await; // guest online
                       // The hub answers the closing handshake (echoing the code) rather than
                       // dropping the socket, which the client would see as a reset.
    assert_eq!(guest.close(1000).await, Closed::Code(1000));
    match host.recv().await {
        ServerMsg::Presence {
            user_id, online, ..
        } => assert_eq!((user_id.as_str(), online), (p.guest.id.as_str(), false)),
        other => panic!("expected presence offline, got {other:?}"),
    }
}

#[tokio::test]
async fn leave_closes_1000_and_the_user_stays_a_member_offline() {
    let p = party_with(|_| {}).await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    match host.recv().await {
        ServerMsg::Presence {
            user_id, online, ..
        } => assert_eq!((user_id.as_str(), online), (p.guest.id.as_str(), true)),
        other => panic!("expected presence, got {other:?}"),
    }
    guest.leave().await;
    assert_eq!(guest.closed().await, Closed::Code(1000));
    match host.recv().await {
        ServerMsg::Presence {
            user_id,
            online,
            listeners,
            ..
        } => assert_eq!(
            (user_id.as_str(), online, listeners),
            (p.guest.id.as_str(), false, 1)
        ),
        other => panic!("expected presence offline, got {other:?}"),
    }
    let s = rest_session(&p.app, &p.host, &p.session).await;
    let online: HashMap<String, bool> = s
        .members
        .iter()
        .map(|m| (m.user_id.clone(), m.online))
        .collect();
    assert_eq!(
        online,
        HashMap::from([(p.host.id.clone(), true), (p.guest.id.clone(), false)])
    );
    assert_eq!(
        count(
            &p.app,
            r#"SELECT count(*) FROM "_GroupSessionToUser" WHERE "A" = $1"#,
            &p.session
        )
        .await,
        2
    );
    // The host's updates no longer go to the left connection, and the
    // session goes on.
    host.add_acked("h1", &p.tracks[0]).await;
    assert_eq!(metric(&p.app, "audotics_hub_listeners").await, 1.0);
    p.app.stop().await;
}

#[tokio::test]
async fn metrics_expose_hub_gauges_counters_and_histograms() {
    let p = party_with(|_| {}).await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    host.add_acked("h1", &p.tracks[0]).await;
    host.add_acked("h2", &p.tracks[1]).await;
    guest.interaction("g1", &p.tracks[0], "play").await;
    assert!(matches!(
        guest
            .recv_until(|m| matches!(m, ServerMsg::Ack { .. }))
            .await,
        ServerMsg::Ack { version: 2, .. }
    ));
    guest.remove("g2", &uuid::Uuid::new_v4().to_string()).await;
    guest.expect_error(Some("g2"), ErrorCode::NotFound).await;
    let m = metrics(&p.app).await;
    let get = |k: &str| {
        *m.get(k)
            .unwrap_or_else(|| panic!("/metrics lacks {k}; has {:?}", m.keys()))
    };
    assert_eq!(get("audotics_hub_live_sessions"), 1.0);
    assert_eq!(get("audotics_hub_listeners"), 2.0);
    assert_eq!(get("audotics_hub_connections"), 2.0);
    assert_eq!(get(r#"audotics_hub_ops_applied_total{op="add"}"#), 2.0);
    assert_eq!(
        get(r#"audotics_hub_ops_applied_total{op="interaction"}"#),
        1.0
    );
    assert_eq!(
        get(r#"audotics_hub_ops_refused_total{code="not_found"}"#),
        1.0
    );
    // Three ops were committed, in 1 to 3 group commits.
    assert_eq!(get("audotics_hub_commit_batch_size_sum"), 3.0);
    let commits = get("audotics_hub_commit_batch_size_count");
    assert!((1.0..=3.0).contains(&commits), "{commits} commits");
    assert_eq!(get("audotics_hub_commit_duration_seconds_count"), commits);
    assert!(get("audotics_hub_commit_duration_seconds_sum") > 0.0);
    assert_eq!(
        get(r#"audotics_hub_commit_batch_size_bucket{le="+Inf"}"#),
        commits
    );
    assert_eq!(
        get(r#"audotics_hub_commit_duration_seconds_bucket{le="+Inf"}"#),
        commits
    );
    assert!(get("audotics_hub_frames_sent_total") > 0.0);
    assert_eq!(get("audotics_hub_slow_listener_disconnects_total"), 0.0);
    assert_eq!(get("audotics_hub_commit_failures_total"), 0.0);
    p.app.stop().await;
}

/// `ping` is answered with `pong` at once, before and after `join`, and is
/// not an op: it never counts against the rate limit.
#[tokio::test]
async fn an_application_ping_is_answered_with_pong() {
    let p = party_with(|c| {
        c.hub.ops_per_sec = 1.0;
        c.hub.ops_burst = 1.0;
    })
    .await;
    let mut ws = p.app.connect().await;
    ws.send_text(r#"{"type":"ping","id":1}"#).await;
    assert!(matches!(
        ws.recv().await,
        ServerMsg::Pong { id: Some(1), .. }
    ));
    ws.join_snapshot(&p.session, &p.host.token).await;
    for i in 2..10u64 {
        ws.send_text(&format!(r#"{{"type":"ping","id":{i}}}"#))
            .await;
        match ws.recv_np().await {
            ServerMsg::Pong { id, .. } => assert_eq!(id, Some(i)),
            other => panic!("expected pong, got {other:?}"),
        }
    }
    ws.send_text(r#"{"type":"ping"}"#).await;
    assert!(matches!(
        ws.recv_np().await,
        ServerMsg::Pong { id: None, .. }
    ));
}
