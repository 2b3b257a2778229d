//! Cluster mode under faults, with real processes and a real NATS server:
//! the owner of a session killed with SIGKILL under writes, its lease
//! connection terminated, NATS stopped for 10 s, a node restarted, a node's
//! listeners leaving presence when it dies. Writers re-send an unanswered op
//! with the same `req` (as the protocol tells clients to); listeners resume
//! with `since`. Every test then checks the same things: every acked op is
//! stored exactly once at its acked version, the log has exactly one row per
//! version, and no listener ever saw a gap.
//!
//! (The protocol suites themselves also run against a three-node cluster:
//! `AUDOTICS_TEST_NODES=3`, see `helpers::test_nodes`.)

use std::collections::HashMap;
use std::time::{Duration, Instant};

use audotics_client::{msg, Ws};
use audotics_protocol::{ErrorCode, ServerMsg};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{fresh_database, track_meta, unique_email, PASSWORD};
use crate::nats::NatsServer;
use crate::process::HubProcess;

/// A hub process in cluster `name` on `nats`.
fn node(db_url: &str, nats: &str, name: &str, id: &str) -> HubProcess {
    node_at("127.0.0.1:0", db_url, nats, name, id)
}

/// [`node`], listening on `bind`.
fn node_at(bind: &str, db_url: &str, nats: &str, name: &str, id: &str) -> HubProcess {
    HubProcess::start_at(
        bind,
        db_url,
        "info",
        &[
            "--nats",
            nats,
            "--cluster",
            name,
            "--node-id",
            id,
            "--ops-per-sec",
            "1000",
            "--ops-burst",
            "1000",
            "--account-ops-per-sec",
            "10000",
        ],
    )
}

fn cluster_name() -> String {
    format!("c{}", uuid::Uuid::new_v4().simple())
}

/// A session with tracks, made through `hub`: (session id, host token,
/// track ids, more users' tokens).
async fn setup(hub: &HubProcess, users: usize) -> (String, String, Vec<String>, Vec<String>) {
    let host = hub
        .rest
        .register(&unique_email("host"), "Host", PASSWORD)
        .await
        .unwrap();
    let rest = hub.rest.as_user(&host.token);
    let session = rest
        .create_session("Cluster", None)
        .await
        .unwrap()
        .session
        .id;
    let mut tracks = Vec::new();
    for i in 0..4 {
        let t = track_meta(&format!("cl{i}"), &format!("T{i}"));
        tracks.push(rest.upsert_track(&t, None).await.unwrap().track.id);
    }
    let mut tokens = Vec::new();
    for i in 0..users {
        let u = hub
            .rest
            .register(&unique_email(&format!("u{i}")), &format!("U{i}"), PASSWORD)
            .await
            .unwrap();
        tokens.push(u.token);
    }
    (session, host.token, tracks, tokens)
}

/// Join on `url`; the first frame's version (snapshot or resumed).
async fn join(url: &str, session: &str, token: &str, since: Option<i64>) -> Option<(Ws, i64)> {
    let mut c = Ws::try_connect(url).await.ok()?;
    c.send_raw(Message::text(msg::text(&msg::join(session, token, since))))
        .await;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), c.recv_opt()).await {
            Ok(Some(ServerMsg::Snapshot(s))) => return Some((c, s.version)),
            Ok(Some(ServerMsg::Resumed { version })) => return Some((c, version)),
            Ok(Some(ServerMsg::Presence { .. })) => continue,
            _ => return None,
        }
    }
}

/// What a writer got acked: req → version, and when each ack came.
#[derive(Default, Debug)]
struct Written {
    acked: HashMap<String, i64>,
    at: Vec<Instant>,
    unavailable: usize,
    reconnects: usize,
}

/// Add tracks until `stop`, one op at a time, each until acked: on a close
/// or silence the writer reconnects (to the next URL) and re-sends the same
/// req; `unavailable` is retried after a pause. `count` is bumped per ack.
fn writer(
    urls: Vec<String>,
    session: String,
    token: String,
    tag: &'static str,
    tracks: Vec<String>,
    stop: watch::Receiver<bool>,
    count: watch::Sender<usize>,
) -> JoinHandle<Written> {
    tokio::spawn(async move {
        let mut out = Written::default();
        let mut k = 0usize;
        let mut conn: Option<Ws> = None;
        let mut i = 0usize;
        while !*stop.borrow() {
            let req = format!("{tag}-{i}");
            let frame = msg::text(&msg::add(&req, &tracks[i % tracks.len()], None));
            loop {
                if conn.is_none() {
                    match join(&urls[k % urls.len()], &session, &token, None).await {
                        Some((c, _)) => conn = Some(c),
                        None => {
                            k += 1;
                            out.reconnects += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    }
                }
                let c = conn.as_mut().expect("connected");
                c.send_raw(Message::text(frame.clone())).await;
                let answer = loop {
                    match tokio::time::timeout(Duration::from_secs(6), c.recv_opt()).await {
                        Ok(Some(ServerMsg::Ack { req: r, version })) if r == req => {
                            break Some(Ok(version))
                        }
                        Ok(Some(ServerMsg::Error {
                            req: Some(r), code, ..
                        })) if r == req => break Some(Err(code)),
                        Ok(Some(_)) => continue,
                        _ => break None,
                    }
                };
                match answer {
                    Some(Ok(v)) => {
                        out.acked.insert(req.clone(), v);
                        out.at.push(Instant::now());
                        count.send_modify(|n| *n += 1);
                        break;
                    }
                    Some(Err(ErrorCode::Unavailable)) => {
                        out.unavailable += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Some(Err(code)) => panic!("{req} refused with {code:?}"),
                    None => {
                        conn = None;
                        k += 1;
                        out.reconnects += 1;
                    }
                }
            }
            i += 1;
        }
        out
    })
}

/// What a listener saw.
#[derive(Default, Debug)]
struct Heard {
    last: i64,
    gaps: Vec<(i64, i64)>,
    updates: usize,
    reconnects: usize,
}

/// Follow the session from `urls[0]` until it reaches the version `until`
/// says; on a close, resume with `since` on the next URL.
fn listener(
    urls: Vec<String>,
    session: String,
    token: String,
    until: watch::Receiver<Option<i64>>,
) -> JoinHandle<Heard> {
    tokio::spawn(async move {
        let mut heard = Heard::default();
        let mut k = 0usize;
        let mut since: Option<i64> = None;
        loop {
            let Some((mut c, v)) = join(&urls[k % urls.len()], &session, &token, since).await
            else {
                k += 1;
                heard.reconnects += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            if since.is_none() {
                heard.last = v;
            }
            since = Some(heard.last);
            loop {
                if until.borrow().is_some_and(|u| heard.last >= u) {
                    return heard;
                }
                match tokio::time::timeout(Duration::from_millis(500), c.recv_opt()).await {
                    Err(_) => continue,
                    Ok(Some(ServerMsg::Update { version, .. })) => {
                        if version != heard.last + 1 {
                            heard.gaps.push((heard.last, version));
                        }
                        heard.last = heard.last.max(version);
                        heard.updates += 1;
                        since = Some(heard.last);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                }
            }
            k += 1;
            heard.reconnects += 1;
        }
    })
}

/// Wait until `count` reaches `n` (or panic after `within`).
async fn acks(count: &mut watch::Receiver<usize>, n: usize, within: Duration) {
    tokio::time::timeout(within, count.wait_for(|c| *c >= n))
        .await
        .unwrap_or_else(|_| panic!("{n} acks did not come within {within:?}"))
        .unwrap();
}

/// The checks every fault test ends with.
async fn verify(db_url: &str, session: &str, written: &[Written], heard: &[Heard]) -> i64 {
    let pool = PgPool::connect(db_url).await.unwrap();
    let log: Vec<(i64, Option<String>)> = sqlx::query_as(
        r#"SELECT u."hubVersion", u."hubReq" FROM "PlaylistUpdate" u
           JOIN "Playlist" p ON p."id" = u."playlistId" WHERE p."sessionId" = $1
           ORDER BY u."hubVersion""#,
    )
    .bind(session)
    .fetch_all(&pool)
    .await
    .unwrap();
    let version: i64 = sqlx::query_scalar("SELECT version FROM hub_session WHERE session_id = $1")
        .bind(session)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(log.len() as i64, version, "one log row per version");
    let mut by_req: HashMap<String, i64> = HashMap::new();
    for (i, (v, req)) in log.iter().enumerate() {
        assert_eq!(*v, i as i64 + 1, "versions 1..={version} in order");
        let req = req.clone().expect("every change here is a member's");
        assert!(
            by_req.insert(req.clone(), *v).is_none(),
            "{req} applied twice"
        );
    }
    for w in written {
        for (req, v) in &w.acked {
            assert_eq!(
                by_req.get(req),
                Some(v),
                "acked {req} at {v} is not stored so"
            );
        }
    }
    for h in heard {
        assert!(h.gaps.is_empty(), "a listener saw gaps: {:?}", h.gaps);
        assert_eq!(h.last, version, "a listener stopped short: {h:?}");
    }
    version
}

/// The longest pause between consecutive acks of any writer after `from`.
fn longest_pause(written: &[Written], from: Instant) -> Duration {
    written
        .iter()
        .flat_map(|w| {
            let mut at: Vec<Instant> = w.at.clone();
            at.sort();
            let after: Vec<Instant> = at.into_iter().filter(|t| *t >= from).collect();
            let first = after.first().map(|t| t.duration_since(from));
            after
                .windows(2)
                .map(|p| p[1].duration_since(p[0]))
                .chain(first)
                .collect::<Vec<_>>()
        })
        .max()
        .unwrap_or_default()
}

struct Run {
    stop: watch::Sender<bool>,
    until: watch::Sender<Option<i64>>,
    count: watch::Receiver<usize>,
    writers: Vec<JoinHandle<Written>>,
    listeners: Vec<JoinHandle<Heard>>,
}

impl Run {
    /// Stop writing, let the listeners catch up, and collect.
    async fn finish(self, db_url: &str, session: &str) -> (Vec<Written>, Vec<Heard>) {
        self.stop.send(true).unwrap();
        let mut written = Vec::new();
        for w in self.writers {
            written.push(
                tokio::time::timeout(Duration::from_secs(30), w)
                    .await
                    .expect("writer finishes")
                    .unwrap(),
            );
        }
        let pool = PgPool::connect(db_url).await.unwrap();
        let version: i64 =
            sqlx::query_scalar("SELECT version FROM hub_session WHERE session_id = $1")
                .bind(session)
                .fetch_one(&pool)
                .await
                .unwrap();
        pool.close().await;
        self.until.send_replace(Some(version));
        let mut heard = Vec::new();
        for l in self.listeners {
            heard.push(
                tokio::time::timeout(Duration::from_secs(30), l)
                    .await
                    .expect("listener reaches the last version")
                    .unwrap(),
            );
        }
        (written, heard)
    }
}

/// Start writers and listeners: writer/listener i begins on `starts[i]`
/// and moves on through the other URLs.
fn run(
    urls: &[String],
    session: &str,
    tokens: &[String],
    tracks: &[String],
    writers_at: &[usize],
    listeners_at: &[usize],
) -> Run {
    let (stop, stop_rx) = watch::channel(false);
    let (until, until_rx) = watch::channel(None);
    let (count_tx, count) = watch::channel(0usize);
    let rotate = |start: usize| -> Vec<String> {
        (0..urls.len())
            .map(|i| urls[(start + i) % urls.len()].clone())
            .collect()
    };
    const TAGS: [&str; 4] = ["wa", "wb", "wc", "wd"];
    let writers = writers_at
        .iter()
        .enumerate()
        .map(|(i, at)| {
            writer(
                rotate(*at),
                session.to_owned(),
                tokens[i].clone(),
                TAGS[i],
                tracks.to_vec(),
                stop_rx.clone(),
                count_tx.clone(),
            )
        })
        .collect();
    let listeners = listeners_at
        .iter()
        .enumerate()
        .map(|(i, at)| {
            listener(
                rotate(*at),
                session.to_owned(),
                tokens[writers_at.len() + i].clone(),
                until_rx.clone(),
            )
        })
        .collect();
    Run {
        stop,
        until,
        count,
        writers,
        listeners,
    }
}

/// Make the node at `url` the session's owner: the first join of a session
/// nobody owns takes its lease there.
async fn own_on(url: &str, session: &str, token: &str) -> Ws {
    let (c, _) = join(url, session, token, None).await.expect("join");
    c
}

#[tokio::test]
async fn killing_the_owner_under_writes_loses_and_repeats_nothing() {
    let db_url = fresh_database().await;
    let nats = NatsServer::start();
    let name = cluster_name();
    let mut a = node(&db_url, &nats.url(), &name, "a");
    let b = node(&db_url, &nats.url(), &name, "b");
    let c = node(&db_url, &nats.url(), &name, "c");
    let (session, host, tracks, tokens) = setup(&a, 6).await;
    let owner = own_on(&a.ws, &session, &host).await;
    let urls = vec![a.ws.clone(), b.ws.clone(), c.ws.clone()];
    // Writers start on a (the owner), b and c; listeners likewise.
    let mut r = run(&urls, &session, &tokens, &tracks, &[0, 1, 2], &[0, 1, 2]);
    acks(&mut r.count, 60, Duration::from_secs(30)).await;
    drop(owner);
    let killed = Instant::now();
    a.kill9();
    let before = *r.count.borrow();
    acks(&mut r.count, before + 60, Duration::from_secs(30)).await;
    let (written, heard) = r.finish(&db_url, &session).await;
    let version = verify(&db_url, &session, &written, &heard).await;
    let pause = longest_pause(&written, killed);
    eprintln!(
        "owner killed: {version} versions, longest pause in acks after the kill {pause:?}, \
         writers {:?}",
        written
            .iter()
            .map(|w| (w.acked.len(), w.unavailable, w.reconnects))
            .collect::<Vec<_>>()
    );
    // The writer and listener of the killed node moved to another one.
    assert!(written[0].reconnects >= 1 && heard[0].reconnects >= 1);
    drop((b, c));
}

#[tokio::test]
async fn a_deposed_owner_cannot_commit_and_its_clients_carry_on() {
    let db_url = fresh_database().await;
    let nats = NatsServer::start();
    let name = cluster_name();
    let a = node(&db_url, &nats.url(), &name, "a");
    let b = node(&db_url, &nats.url(), &name, "b");
    let (session, host, tracks, tokens) = setup(&a, 4).await;
    let owner = own_on(&a.ws, &session, &host).await;
    let urls = vec![a.ws.clone(), b.ws.clone()];
    let mut r = run(&urls, &session, &tokens, &tracks, &[0, 1], &[0, 1]);
    acks(&mut r.count, 40, Duration::from_secs(30)).await;
    // Postgres drops a's lease connection, and with it every lease it held.
    // (A lease connection a gave up under load, say a ping over 2 s, leaves
    // for a moment after a's new one is open: wait until a has one.)
    let pool = PgPool::connect(&db_url).await.unwrap();
    let waited = Instant::now();
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'audotics-hub-lease a'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if n == 1 {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "a holds {n} lease connections"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'audotics-hub-lease a'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(killed, vec![true], "a's lease connection");
    let before = *r.count.borrow();
    acks(&mut r.count, before + 40, Duration::from_secs(30)).await;
    let (written, heard) = r.finish(&db_url, &session).await;
    verify(&db_url, &session, &written, &heard).await;
    // a noticed (its lease connection is checked twice a second).
    let base = a.ws.replace("ws://", "http://").replace("/v1/ws", "");
    let deposed = || async {
        let m = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        m.lines()
            .find_map(|l| l.strip_prefix("audotics_cluster_deposed_total "))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let waited = Instant::now();
    while deposed().await < 1.0 {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "a's actor did not stop when its lease was lost"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pool.close().await;
    drop((owner, a, b));
}

/// The fence itself: a commit made under an epoch that has moved on
/// changes nothing (SQLSTATE HB409), whoever sends it.
#[tokio::test]
async fn a_commit_under_an_old_epoch_changes_nothing() {
    use audotics_hub::db::commit::{self, BatchWrite, SessionCommit};
    use audotics_hub::db::sessions;
    let app = crate::helpers::spawn_app_with(|_| {}).await;
    let host = app.register("Host").await;
    let (session, playlist) = app.create_session(&host, "Fence").await;
    let (version, commits, old) = sessions::take_over(&app.db, &session).await.unwrap();
    let (_, _, new) = sessions::take_over(&app.db, &session).await.unwrap();
    assert_eq!(new, old + 1);
    let stale = SessionCommit {
        session_id: session.clone(),
        playlist_id: playlist.clone(),
        version: version + 1,
        commits: commits + 1,
        epoch: old,
        at: chrono::Utc::now(),
        touch: true,
        write: BatchWrite::default(),
    };
    let err = commit::write(&app.db, &[&stale]).await.unwrap_err();
    let code = err.as_database_error().and_then(|e| e.code()).unwrap();
    assert_eq!(code, "HB409");
    assert_eq!(sessions::version(&app.db, &session).await.unwrap(), version);
    let current = SessionCommit {
        epoch: new,
        ..stale
    };
    commit::write(&app.db, &[&current]).await.unwrap();
    assert_eq!(
        sessions::version(&app.db, &session).await.unwrap(),
        version + 1
    );
}

#[tokio::test]
async fn nats_down_for_ten_seconds_under_writes_loses_nothing_and_recovers() {
    let db_url = fresh_database().await;
    let mut nats = NatsServer::start();
    let name = cluster_name();
    let a = node(&db_url, &nats.url(), &name, "a");
    let b = node(&db_url, &nats.url(), &name, "b");
    let (session, host, tracks, tokens) = setup(&a, 4).await;
    let owner = own_on(&a.ws, &session, &host).await;
    let urls = vec![a.ws.clone(), b.ws.clone()];
    let mut r = run(&urls, &session, &tokens, &tracks, &[0, 1], &[0, 1]);
    acks(&mut r.count, 40, Duration::from_secs(30)).await;
    nats.stop();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let during = *r.count.borrow();
    nats.resume();
    let up = Instant::now();
    acks(&mut r.count, during + 40, Duration::from_secs(30)).await;
    let (written, heard) = r.finish(&db_url, &session).await;
    let version = verify(&db_url, &session, &written, &heard).await;
    eprintln!(
        "NATS down {:?}: {version} versions; acks during the outage {}, \
         longest pause after it came back {:?}; writers {:?}",
        up - down,
        during,
        longest_pause(&written, up),
        written
            .iter()
            .map(|w| (w.acked.len(), w.unavailable, w.reconnects))
            .collect::<Vec<_>>()
    );
    drop((owner, a, b));
}

#[tokio::test]
async fn a_restarted_node_serves_its_listeners_again_from_where_they_were() {
    let db_url = fresh_database().await;
    let nats = NatsServer::start();
    let name = cluster_name();
    let a = node(&db_url, &nats.url(), &name, "a");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    let mut b = node_at(&bind, &db_url, &nats.url(), &name, "b");
    let (session, host, tracks, tokens) = setup(&a, 2).await;
    let owner = own_on(&a.ws, &session, &host).await;
    // A writer on a; a listener on b, which is killed and started again on
    // the same address (the listener keeps resuming with `since` there).
    let mut r = run(
        std::slice::from_ref(&a.ws),
        &session,
        &tokens,
        &tracks,
        &[0],
        &[],
    );
    let (until, until_rx) = watch::channel(None);
    let on_b = listener(
        vec![b.ws.clone()],
        session.clone(),
        tokens[1].clone(),
        until_rx,
    );
    acks(&mut r.count, 30, Duration::from_secs(30)).await;
    b.kill9();
    let before = *r.count.borrow();
    acks(&mut r.count, before + 20, Duration::from_secs(30)).await;
    let b2 = node_at(&bind, &db_url, &nats.url(), &name, "b");
    let before = *r.count.borrow();
    acks(&mut r.count, before + 20, Duration::from_secs(30)).await;
    let (written, _) = r.finish(&db_url, &session).await;
    let version = written[0].acked.values().copied().max().unwrap();
    until.send(Some(version)).unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(30), on_b)
        .await
        .expect("the listener catches up on the restarted node")
        .unwrap();
    assert!(heard.reconnects >= 1, "{heard:?}");
    verify(&db_url, &session, &written, &[heard]).await;
    drop((owner, a, b2));
}

/// Takes asked at once go to Postgres together, and each still gets its own
/// outcome: what another node holds is refused, the rest taken, a key
/// asked twice taken twice (and given back once per take).
#[tokio::test]
async fn leases_taken_at_once_each_get_their_own_outcome() {
    use audotics_hub::cluster::lease::Leases;
    let db_url = fresh_database().await;
    let a = Leases::new(&db_url, "a").unwrap();
    let b = Leases::new(&db_url, "b").unwrap();
    let ids: Vec<String> = (0..40).map(|i| format!("s{i}")).collect();
    let held_by_b = &ids[..10];
    let taken = futures::future::join_all(held_by_b.iter().map(|id| b.acquire(id))).await;
    assert!(taken.iter().all(|t| matches!(t, Ok(Some(_)))));
    let mut asked: Vec<&String> = ids.iter().collect();
    asked.push(&ids[20]);
    let outcomes = futures::future::join_all(asked.iter().map(|id| a.acquire(id))).await;
    for (id, got) in asked.iter().zip(&outcomes) {
        let got = got.as_ref().expect("no error");
        assert_eq!(
            got.is_some(),
            !held_by_b.contains(id),
            "{id}: refused exactly when b holds it"
        );
    }
    assert_eq!(a.held().await, 30);
    let token = outcomes[20].as_ref().unwrap().clone().unwrap();
    a.release(&ids[20], &token).await;
    assert!(
        b.acquire(&ids[20]).await.unwrap().is_none(),
        "still held once"
    );
    a.release(&ids[20], &token).await;
    assert!(b.acquire(&ids[20]).await.unwrap().is_some(), "given back");
    a.close().await;
    b.close().await;
}

/// A take whose asker gave up before the answer came (its client went
/// away) is given back: otherwise the session would stay locked by a node
/// that runs no actor for it, and no node could ever own it again.
#[tokio::test]
async fn a_lease_taken_for_an_asker_that_gave_up_is_given_back() {
    use audotics_hub::cluster::lease::Leases;
    let db_url = fresh_database().await;
    let a = Leases::new(&db_url, "a").unwrap();
    let b = Leases::new(&db_url, "b").unwrap();
    // Polled once (the take is asked), then dropped.
    let gave_up = tokio::time::timeout(Duration::ZERO, a.acquire("s1")).await;
    assert!(gave_up.is_err(), "the take had no answer yet");
    // Takes are answered in order: once this one is, s1's was taken.
    let s2 = a.acquire("s2").await.unwrap().expect("nobody holds s2");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if b.acquire("s1").await.unwrap().is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node a still holds s1 for nobody"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(a.held().await, 1, "s2 only");
    a.release("s2", &s2).await;
    a.close().await;
    b.close().await;
}

/// `name`'s value in the `/metrics` of the node at `ws`.
async fn metric(ws: &str, name: &str) -> f64 {
    let base = ws.replace("ws://", "http://").replace("/v1/ws", "");
    let m = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    m.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// A writer on a node that does not own the session sends ops back to
/// back: they commit in the order sent, each is acked before the `leave`
/// that follows them closes the connection, and they reach the owner
/// several to a request (the connection does not wait for each answer).
#[tokio::test]
async fn a_writer_on_another_node_pipelines_its_ops_in_order() {
    let db_url = fresh_database().await;
    let nats = NatsServer::start();
    let name = cluster_name();
    let a = node(&db_url, &nats.url(), &name, "a");
    let b = node(&db_url, &nats.url(), &name, "b");
    let (session, host, tracks, tokens) = setup(&a, 1).await;
    let _owner = own_on(&a.ws, &session, &tokens[0]).await;
    let mut w = Ws::connect(&b.ws).await;
    let first = w.join_snapshot(&session, &host).await.version;
    const N: usize = 24;
    for i in 0..N {
        w.add(&format!("p{i}"), &tracks[i % tracks.len()], None)
            .await;
    }
    w.leave().await;
    let mut acked = Vec::new();
    while let Some(m) = w.recv_opt().await {
        match m {
            ServerMsg::Ack { req, version } => acked.push((req, version)),
            ServerMsg::Error { code, message, .. } => panic!("{code:?}: {message}"),
            _ => {}
        }
    }
    let expected: Vec<(String, i64)> = (0..N)
        .map(|i| (format!("p{i}"), first + 1 + i as i64))
        .collect();
    assert_eq!(acked, expected, "every op acked, in the order sent");
    let forwarded = metric(&b.ws, "audotics_cluster_ops_forwarded_total").await;
    let requests = metric(&b.ws, "audotics_cluster_op_requests_total").await;
    assert_eq!(forwarded, N as f64);
    assert!(
        requests < (N / 2) as f64,
        "{N} ops went to the owner in {requests} requests"
    );
    drop((a, b));
}

#[tokio::test]
async fn presence_spans_nodes_and_a_dead_nodes_listeners_leave_it() {
    let db_url = fresh_database().await;
    let nats = NatsServer::start();
    let name = cluster_name();
    let a = node(&db_url, &nats.url(), &name, "a");
    let mut b = node(&db_url, &nats.url(), &name, "b");
    let (session, host, _, tokens) = setup(&a, 1).await;
    let mut host_ws = Ws::connect(&a.ws).await;
    host_ws.join_snapshot(&session, &host).await;
    let mut guest = Ws::connect(&b.ws).await;
    let snap = guest.join_snapshot(&session, &tokens[0]).await;
    // The guest's snapshot, made by the owner on a, shows the host online.
    let online: Vec<bool> = snap.members.iter().map(|m| m.online).collect();
    assert_eq!(online, vec![true, true], "{:?}", snap.members);
    match host_ws.recv().await {
        ServerMsg::Presence {
            online, listeners, ..
        } => assert_eq!((online, listeners), (true, 2)),
        other => panic!("expected the guest's presence, got {other:?}"),
    }
    let killed = Instant::now();
    b.kill9();
    match host_ws.recv().await {
        ServerMsg::Presence {
            online, listeners, ..
        } => assert_eq!((online, listeners), (false, 1)),
        other => panic!("expected the guest to go offline, got {other:?}"),
    }
    eprintln!(
        "a dead node's listener left presence after {:?}",
        killed.elapsed()
    );
    drop((a, guest));
}
