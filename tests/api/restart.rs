//! Restart safety: the hub *process* is killed with SIGKILL while writers
//! stream ops, then started again on the same database. Everything acked
//! must be there, nothing seen by a listener may be missing, the stored queue
//! must be exactly the replay of the stored log, and re-sent reqs must get
//! their original acks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use audotics_client::{msg, Ws};
use audotics_protocol::{ClientMsg, OpKind, ServerMsg};

use crate::helpers::{fresh_database, track_meta, unique_email, PASSWORD};
use crate::process::HubProcess;

/// (user id, token) of a new account.
async fn user(hub: &HubProcess, name: &str) -> (String, String) {
    let r = hub
        .rest
        .register(&unique_email(name), name, PASSWORD)
        .await
        .unwrap();
    (r.user.id, r.token)
}

/// version, type, entry, fromIndex, toIndex of one stored update.
type LogRow = (i64, String, String, Option<i32>, Option<i32>);

/// What one writer learned before the kill.
#[derive(Default)]
struct Seen {
    /// req → acked version
    acked: HashMap<String, i64>,
    /// version → entry id of every update received
    updates: HashMap<i64, String>,
    /// reqs sent but not acked when the hub died
    sent: Vec<(String, ClientMsg)>,
}

#[tokio::test]
async fn sigkill_mid_stream_loses_nothing_acked() {
    let db_url = fresh_database().await;
    let mut hub = HubProcess::start(&db_url);
    let (host_id, host_token) = user(&hub, "Host").await;
    let host = hub.rest.as_user(&host_token);
    let session_id = host
        .create_session("Kill -9", None)
        .await
        .unwrap()
        .session
        .id;
    let mut tracks = Vec::new();
    for i in 0..4 {
        let t = track_meta(&format!("kill{i}"), &format!("T{i}"));
        tracks.push(host.upsert_track(&t, None).await.unwrap().track.id);
    }
    let mut users = vec![(host_id, host_token.clone())];
    for i in 0..2 {
        users.push(user(&hub, &format!("W{i}")).await);
    }

    // Writers stream ops (each waits for its ack before the next) until the
    // hub dies under them.
    let results: Vec<Arc<Mutex<Seen>>> = users.iter().map(|_| Arc::default()).collect();
    let mut tasks = Vec::new();
    for (w, (me, token)) in users.iter().enumerate() {
        let me = me.clone();
        let mut c = Ws::connect(&hub.ws).await;
        c.join(&session_id, token, None).await;
        assert!(matches!(c.recv().await, ServerMsg::Snapshot(_)));
        let seen = results[w].clone();
        let tracks = tracks.clone();
        tasks.push(tokio::spawn(async move {
            let mut own: Vec<String> = Vec::new();
            for i in 0.. {
                let req = format!("w{w}-{i}");
                let frame = if w == 0 && i % 4 == 3 && own.len() > 1 {
                    msg::reorder(&req, &own[1], 0, None)
                } else if i % 5 == 4 && !own.is_empty() {
                    msg::remove(&req, &own.remove(0))
                } else {
                    msg::add(&req, &tracks[i % tracks.len()], None)
                };
                seen.lock().unwrap().sent.push((req.clone(), frame.clone()));
                c.send(&frame).await;
                loop {
                    let Some(m) = c.recv_opt().await else {
                        return;
                    };
                    match m {
                        ServerMsg::Update {
                            version, change, ..
                        } => {
                            if change.op == OpKind::Add && change.by.as_ref() == Some(&me) {
                                own.push(change.entry_id.clone().unwrap());
                            }
                            seen.lock()
                                .unwrap()
                                .updates
                                .insert(version, change.entry_id.unwrap());
                        }
                        ServerMsg::Ack { req: r, version } if r == req => {
                            let mut s = seen.lock().unwrap();
                            s.acked.insert(r, version);
                            s.sent.pop();
                            break;
                        }
                        ServerMsg::Error { req: Some(r), .. } if r == req => {
                            seen.lock().unwrap().sent.pop();
                            break;
                        }
                        _ => {}
                    }
                }
            }
        }));
    }
    // Kill once a good number of ops are acked, i.e. mid-stream.
    loop {
        let acked: usize = results.iter().map(|s| s.lock().unwrap().acked.len()).sum();
        if acked >= 60 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    hub.kill9();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(20), t)
            .await
            .expect("writer ends when the hub dies");
    }

    let mut hub = HubProcess::start(&db_url);
    let snap = hub
        .rest
        .as_user(&host_token)
        .session(&session_id)
        .await
        .unwrap();
    let version = snap.version;
    let max_acked = results
        .iter()
        .flat_map(|s| {
            s.lock()
                .unwrap()
                .acked
                .values()
                .copied()
                .collect::<Vec<_>>()
        })
        .max()
        .unwrap();
    let max_seen = results
        .iter()
        .flat_map(|s| {
            s.lock()
                .unwrap()
                .updates
                .keys()
                .copied()
                .collect::<Vec<_>>()
        })
        .max()
        .unwrap();
    assert!(
        version >= max_acked,
        "acked version {max_acked} lost: stored {version}"
    );
    assert!(
        version >= max_seen,
        "a listener saw version {max_seen} that is not stored ({version})"
    );

    // The stored log, replayed, is the stored queue and what listeners saw.
    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
    let log: Vec<LogRow> = sqlx::query_as(
        r#"SELECT u."hubVersion", u."type", u."hubEntryId", u."hubFromIndex", u."hubToIndex" FROM "PlaylistUpdate" u
           JOIN "Playlist" p ON p."id" = u."playlistId" WHERE p."sessionId" = $1 ORDER BY u."hubVersion""#,
    )
    .bind(&session_id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        log.len() as i64,
        version,
        "log has exactly one row per version"
    );
    let mut model: Vec<String> = Vec::new();
    for (i, (v, kind, entry, from, to)) in log.iter().enumerate() {
        assert_eq!(*v, i as i64 + 1);
        match kind.as_str() {
            "add" => model.insert(to.unwrap() as usize, entry.clone()),
            "remove" => assert_eq!(&model.remove(from.unwrap() as usize), entry),
            "reorder" => {
                let e = model.remove(from.unwrap() as usize);
                assert_eq!(&e, entry);
                model.insert(to.unwrap() as usize, e);
            }
            other => panic!("unexpected type {other}"),
        }
        for s in &results {
            if let Some(seen_entry) = s.lock().unwrap().updates.get(v) {
                assert_eq!(
                    seen_entry, entry,
                    "listener saw a different change at version {v}"
                );
            }
        }
    }
    let queue: Vec<String> = snap.queue.iter().map(|e| e.entry_id.clone()).collect();
    assert_eq!(queue, model);

    // Exactly once after the restart: acked reqs get their original ack; an
    // op in flight at the kill is applied at most once when re-sent.
    for (w, (_, token)) in users.iter().enumerate() {
        let mut c = Ws::connect(&hub.ws).await;
        c.join(&session_id, token, Some(version)).await;
        assert!(matches!(c.recv_np().await, ServerMsg::Resumed { .. }));
        let (acked, sent) = {
            let s = results[w].lock().unwrap();
            (s.acked.clone(), s.sent.clone())
        };
        for (req, v) in acked.iter().take(10) {
            c.add(req, &tracks[0], None).await;
            // (Updates from other writers' re-sent in-flight ops may come first.)
            match c
                .recv_until(|m| !matches!(m, ServerMsg::Update { .. } | ServerMsg::Presence { .. }))
                .await
            {
                ServerMsg::Ack { req: r, version } => assert_eq!((&r, version), (req, *v)),
                other => panic!("expected the original ack for {req}, got {other:?}"),
            }
        }
        for (req, frame) in sent {
            c.send(&frame).await;
            let _ = c.recv_until(|m| matches!(m, ServerMsg::Ack { req: r, .. } | ServerMsg::Error { req: Some(r), .. } if *r == req)).await;
            let n: i64 =
                sqlx::query_scalar(r#"SELECT count(*) FROM "PlaylistUpdate" WHERE "hubReq" = $1"#)
                    .bind(&req)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            assert!(n <= 1, "{req} applied {n} times");
        }
    }
    pool.close().await;
    hub.terminate();
}
