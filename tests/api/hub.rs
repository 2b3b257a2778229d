//! The session hub over real sockets: one test per protocol guarantee.

use std::collections::HashMap;

use audotics_client::{msg, Closed, Ws};
use audotics_protocol::model::TrackBody;
use audotics_protocol::{msg_req, Change, ClientMsg, ErrorCode, OpKind, ServerMsg};

use crate::helpers::*;

/// The queue order as stored, entry ids by position.
async fn stored_queue(app: &TestApp, session: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT entry_id FROM hub_queue_entry WHERE session_id = $1 ORDER BY position",
    )
    .bind(session)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn join_add_update_then_ack_and_rows_written() {
    let p = party().await;
    let (mut host, snap) = p.app.join(&p.host, &p.session).await;
    assert_eq!(snap.version, 0);
    assert_eq!(snap.you.role, audotics_protocol::model::Role::Host);
    let (mut guest, snap) = p.app.join(&p.guest, &p.session).await;
    assert_eq!(snap.you.role, audotics_protocol::model::Role::Member);
    assert!(snap
        .members
        .iter()
        .any(|m| m.user_id == p.host.id && m.online));
    // The host learns that the guest came online.
    match host.recv().await {
        ServerMsg::Presence {
            user_id,
            online,
            listeners,
            ..
        } => {
            assert_eq!(
                (user_id.as_str(), online, listeners),
                (p.guest.id.as_str(), true, 2)
            );
        }
        other => panic!("expected presence, got {other:?}"),
    }
    let (v, entry) = guest.add_acked("g1", &p.tracks[0]).await;
    assert_eq!(v, 1);
    match host.recv_np().await {
        ServerMsg::Update {
            version, change, ..
        } => {
            assert_eq!(version, 1);
            assert_eq!(change.op, OpKind::Add);
            assert_eq!(change.entry_id, Some(entry.clone()));
            assert_eq!(change.index, Some(0));
            assert_eq!(change.by, Some(p.guest.id.clone()));
            assert_eq!(change.track.unwrap().id, p.tracks[0]);
        }
        other => panic!("expected update, got {other:?}"),
    }
    // Joining made the guest a member; the rows the old app reads are there.
    let members = count(
        &p.app,
        r#"SELECT count(*) FROM "_GroupSessionToUser" WHERE "A" = $1"#,
        &p.session,
    )
    .await;
    assert_eq!(members, 2);
    let row: (String, String, String, Option<i64>, Option<String>, Option<String>) = sqlx::query_as(
        r#"SELECT "type", "trackId", "userId", "hubVersion", "hubReq", "hubEntryId" FROM "PlaylistUpdate" WHERE "playlistId" = $1"#,
    )
    .bind(&p.playlist)
    .fetch_one(&p.app.db)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "add".into(),
            p.tracks[0].clone(),
            p.guest.id.clone(),
            Some(1),
            Some("g1".into()),
            Some(entry.clone())
        )
    );
    let linked = count(
        &p.app,
        r#"SELECT count(*) FROM "_PlaylistToTrack" WHERE "A" = $1"#,
        &p.playlist,
    )
    .await;
    assert_eq!(linked, 1);
    // Removing the only entry of that track unlinks it for the old app.
    guest.remove("g2", &entry).await;
    assert_eq!(guest.applied("g2").await, 2);
    let linked = count(
        &p.app,
        r#"SELECT count(*) FROM "_PlaylistToTrack" WHERE "A" = $1"#,
        &p.playlist,
    )
    .await;
    assert_eq!(linked, 0);
    let version: i64 = sqlx::query_scalar("SELECT version FROM hub_session WHERE session_id = $1")
        .bind(&p.session)
        .fetch_one(&p.app.db)
        .await
        .unwrap();
    assert_eq!(version, 2);
    p.app.stop().await;
}

/// Ops sent back to back with a `leave` right behind them: each is acked,
/// in the order sent, before the connection closes (on a cluster, the
/// writer's node is not the owner: its ops are pipelined to it).
#[tokio::test]
async fn a_leave_right_behind_ops_still_gets_their_acks() {
    let p = party_with(unlimited).await;
    let (_owner, _) = p.app.join(&p.guest, &p.session).await;
    let (mut w, snap) = p.app.join(&p.host, &p.session).await;
    const N: usize = 20;
    for i in 0..N {
        w.add(&format!("q{i}"), &p.tracks[i % p.tracks.len()], None)
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
        .map(|i| (format!("q{i}"), snap.version + 1 + i as i64))
        .collect();
    assert_eq!(acked, expected, "every op acked, in the order sent");
}

#[tokio::test]
async fn total_order_and_convergence_under_concurrent_writers() {
    let p = party_with(unlimited).await;
    let (mut watcher, _) = p.app.join(&p.host, &p.session).await;
    let mut writers = Vec::new();
    let mut users = vec![p.host.clone(), p.guest.clone()];
    users.push(p.app.register("Third").await);
    const PER_WRITER: usize = 25;
    for (w, user) in users.iter().enumerate() {
        let (c, _) = p.app.join(user, &p.session).await;
        let tracks = p.tracks.clone();
        let is_host = w == 0;
        let me = user.id.clone();
        writers.push(tokio::spawn(async move {
            let mut c = c;
            let mut entries: Vec<String> = Vec::new();
            for i in 0..PER_WRITER {
                let req = format!("w{w}-{i}");
                // The host mixes in reorders; everyone removes some of their own.
                let frame = if is_host && i % 3 == 2 && !entries.is_empty() {
                    msg::reorder(&req, &entries[0], 0, None)
                } else if i % 7 == 6 && !entries.is_empty() {
                    let e = entries.remove(0);
                    msg::remove(&req, &e)
                } else {
                    msg::add(&req, &tracks[i % tracks.len()], Some(0))
                };
                c.send(&frame).await;
                loop {
                    match c.recv().await {
                        ServerMsg::Update { change, .. }
                            if change.by.as_ref() == Some(&me) && change.op == OpKind::Add =>
                        {
                            entries.push(change.entry_id.unwrap());
                        }
                        ServerMsg::Ack { req: r, .. } if r == req => break,
                        ServerMsg::Error {
                            req: Some(r),
                            code,
                            message,
                        } if r == req => {
                            panic!("op {r} refused: {code:?} {message}");
                        }
                        _ => {}
                    }
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let total = (PER_WRITER * users.len()) as i64;
    // Every listener saw versions 1..=total in order, and the same changes.
    let mut seen = Vec::new();
    while (seen.len() as i64) < total {
        if let ServerMsg::Update {
            version, change, ..
        } = watcher.recv().await
        {
            assert_eq!(version, seen.len() as i64 + 1, "gap or reorder in versions");
            seen.push((version, change));
        }
    }
    let mut late = p.app.connect().await;
    late.join(&p.session, &p.guest.token, Some(0)).await;
    assert!(matches!(late.recv_np().await, ServerMsg::Resumed { version } if version == total));
    for (v, change) in &seen {
        match late.recv_np().await {
            ServerMsg::Update {
                version, change: c, ..
            } => {
                assert_eq!(version, *v);
                assert_eq!(&c, change);
            }
            other => panic!("expected replayed update, got {other:?}"),
        }
    }
    // Applying the updates to a plain Vec gives the hub's final queue.
    let mut model: Vec<String> = Vec::new();
    for (_, c) in &seen {
        match c.op {
            OpKind::Add => model.insert(c.index.unwrap(), c.entry_id.clone().unwrap()),
            OpKind::Remove => {
                assert_eq!(Some(model.remove(c.index.unwrap())), c.entry_id);
            }
            OpKind::Reorder => {
                let e = model.remove(c.from_index.unwrap());
                assert_eq!(Some(&e), c.entry_id.as_ref());
                model.insert(c.to_index.unwrap(), e);
            }
            other => panic!("no {other:?} changes here"),
        }
    }
    assert_eq!(stored_queue(&p.app, &p.session).await, model);
    let snap = p.app.as_user(&p.host).session(&p.session).await.unwrap();
    assert_eq!(snap.version, total);
    let ids: Vec<String> = snap.queue.iter().map(|e| e.entry_id.clone()).collect();
    assert_eq!(ids, model);
    p.app.stop().await;
}

/// Make every commit that writes a PlaylistUpdate or TrackInteraction fail
/// at COMMIT time while `hub_test_fail` has a row.
async fn install_commit_failure(app: &TestApp) {
    for sql in [
        "CREATE TABLE hub_test_fail (on_ boolean)",
        r#"CREATE FUNCTION hub_test_fail_fn() RETURNS trigger AS $$
           BEGIN IF EXISTS (SELECT 1 FROM hub_test_fail) THEN RAISE EXCEPTION 'injected commit failure'; END IF; RETURN NULL; END $$ LANGUAGE plpgsql"#,
        r#"CREATE CONSTRAINT TRIGGER hub_test_fail_pu AFTER INSERT ON "PlaylistUpdate" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hub_test_fail_fn()"#,
        r#"CREATE CONSTRAINT TRIGGER hub_test_fail_ti AFTER INSERT ON "TrackInteraction" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hub_test_fail_fn()"#,
    ] {
        sqlx::query(sql).execute(&app.db).await.unwrap();
    }
}

async fn set_commit_failure(app: &TestApp, on: bool) {
    let sql = if on {
        "INSERT INTO hub_test_fail VALUES (true)"
    } else {
        "DELETE FROM hub_test_fail"
    };
    sqlx::query(sql).execute(&app.db).await.unwrap();
}

#[tokio::test]
async fn durable_before_visible_a_failed_commit_leaves_no_trace() {
    let p = party().await;
    install_commit_failure(&p.app).await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    let (_, kept) = host.add_acked("h1", &p.tracks[0]).await;
    assert!(matches!(
        guest.recv_np().await,
        ServerMsg::Update { version: 1, .. }
    ));
    set_commit_failure(&p.app, true).await;
    guest.add("g1", &p.tracks[1], None).await;
    guest.expect_error(Some("g1"), ErrorCode::Unavailable).await;
    host.remove("h2", &kept).await;
    host.expect_error(Some("h2"), ErrorCode::Unavailable).await;
    host.interaction("h3", &p.tracks[0], "like").await;
    host.expect_error(Some("h3"), ErrorCode::Unavailable).await;
    // Nothing of the failed ops is stored, and the live state is unchanged.
    assert_eq!(logged_updates(&p.app, &p.playlist).await, 1);
    assert_eq!(logged_interactions(&p.app, &p.session).await, 0);
    assert_eq!(stored_queue(&p.app, &p.session).await, vec![kept.clone()]);
    let (_, snap) = p.app.join(&p.guest, &p.session).await;
    assert_eq!(snap.version, 1);
    assert_eq!(
        snap.queue
            .iter()
            .map(|e| e.entry_id.clone())
            .collect::<Vec<_>>(),
        vec![kept.clone()]
    );
    // No update was broadcast for the failed ops: the host's next frame is
    // the update of the retry, with the very next version.
    set_commit_failure(&p.app, false).await;
    guest.add("g1", &p.tracks[1], None).await;
    match host.recv_np().await {
        ServerMsg::Update {
            version, change, ..
        } => {
            assert_eq!(version, 2);
            assert_eq!(change.by, Some(p.guest.id.clone()));
        }
        other => panic!("expected the retried update, got {other:?}"),
    }
    assert_eq!(guest.applied("g1").await, 2);
    p.app.stop().await;
}

#[tokio::test]
async fn exactly_once_across_reconnect_and_restart() {
    let p = party().await;
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    let (v1, _) = guest.add_acked("once", &p.tracks[0]).await;
    // The same req on a new connection: the original ack, nothing applied.
    drop(guest);
    let (mut guest, snap) = p.app.join(&p.guest, &p.session).await;
    assert_eq!(snap.version, 1);
    guest.add("once", &p.tracks[1], None).await;
    assert!(
        matches!(guest.recv_np().await, ServerMsg::Ack { version, ref req } if version == v1 && req == "once")
    );
    // Two copies in flight at once: one applied, both acked alike.
    guest.add("twin", &p.tracks[2], None).await;
    guest.add("twin", &p.tracks[2], None).await;
    let mut acks = Vec::new();
    let mut updates = 0;
    while acks.len() < 2 {
        match guest.recv_np().await {
            ServerMsg::Ack { version, .. } => acks.push(version),
            ServerMsg::Update { .. } => updates += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(acks, vec![2, 2]);
    assert_eq!(updates, 1);
    drop(guest);
    // After a restart the memory comes back from the database.
    let db_url = p.app.db_url.clone();
    p.app.stop().await;
    let app = spawn_app_on(db_url, |_| {}).await;
    let (mut guest, snap) = app.join(&p.guest, &p.session).await;
    assert_eq!(snap.version, 2);
    guest.add("once", &p.tracks[3], None).await;
    assert!(matches!(
        guest.recv_np().await,
        ServerMsg::Ack { version: 1, .. }
    ));
    guest.add("twin", &p.tracks[3], None).await;
    assert!(matches!(
        guest.recv_np().await,
        ServerMsg::Ack { version: 2, .. }
    ));
    assert_eq!(logged_updates(&app, &p.playlist).await, 2);
    app.stop().await;
}

#[tokio::test]
async fn resume_with_since_gets_exactly_the_missed_updates() {
    let p = party().await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    host.add_acked("a1", &p.tracks[0]).await;
    host.add_acked("a2", &p.tracks[1]).await;
    let (mut guest, snap) = p.app.join(&p.guest, &p.session).await;
    assert_eq!(snap.version, 2);
    drop(guest);
    let mut missed = HashMap::new();
    for i in 0..3 {
        let (v, e) = host.add_acked(&format!("b{i}"), &p.tracks[2]).await;
        missed.insert(v, e);
    }
    guest = p.app.connect().await;
    guest.join(&p.session, &p.guest.token, Some(2)).await;
    assert!(matches!(
        guest.recv_np().await,
        ServerMsg::Resumed { version: 5 }
    ));
    for v in 3..=5 {
        match guest.recv_np().await {
            ServerMsg::Update {
                version, change, ..
            } => {
                assert_eq!(version, v);
                assert_eq!(change.entry_id.as_ref(), Some(&missed[&v]));
            }
            other => panic!("expected update {v}, got {other:?}"),
        }
    }
    // since = current: resumed and nothing else (the next frame is a new update).
    let mut again = p.app.connect().await;
    again.join(&p.session, &p.guest.token, Some(5)).await;
    assert!(matches!(
        again.recv_np().await,
        ServerMsg::Resumed { version: 5 }
    ));
    host.add_acked("c1", &p.tracks[3]).await;
    assert!(matches!(
        again.recv_np().await,
        ServerMsg::Update { version: 6, .. }
    ));
    // since beyond the current version: a fresh snapshot.
    let mut ahead = p.app.connect().await;
    ahead.join(&p.session, &p.guest.token, Some(99)).await;
    assert!(matches!(ahead.recv_np().await, ServerMsg::Snapshot(s) if s.version == 6));
    // After a restart the log serves the resume.
    let db_url = p.app.db_url.clone();
    drop((host, guest, again, ahead));
    p.app.stop().await;
    let app = spawn_app_on(db_url, |_| {}).await;
    let mut c = app.connect().await;
    c.join(&p.session, &p.guest.token, Some(4)).await;
    assert!(matches!(
        c.recv_np().await,
        ServerMsg::Resumed { version: 6 }
    ));
    assert!(
        matches!(c.recv_np().await, ServerMsg::Update { version: 5, ref change, .. } if change.entry_id.as_ref() == Some(&missed[&5]))
    );
    assert!(matches!(
        c.recv_np().await,
        ServerMsg::Update { version: 6, .. }
    ));
    app.stop().await;
}

/// Send `m` and wait for its `ack`; returns the change it made. Other
/// users' updates may arrive before it; the sender's own `update` always
/// comes before its `ack`.
async fn change_of(c: &mut Ws, m: ClientMsg) -> Change {
    let req = msg_req(&m).expect("an op").to_owned();
    c.send(&m).await;
    let mut updates = HashMap::new();
    loop {
        match c.recv_np().await {
            ServerMsg::Update {
                version, change, ..
            } => {
                updates.insert(version, change);
            }
            ServerMsg::Ack { req: r, version } if r == req => {
                return updates
                    .remove(&version)
                    .unwrap_or_else(|| panic!("no update before the ack of {req}"));
            }
            other => panic!("{req}: unexpected {other:?}"),
        }
    }
}

/// REST `/updates` and a replay of `update` frames from the log (a
/// restarted hub has none of them in memory) are two views of one history:
/// they agree field for field on every version, and the replay is what the
/// listeners saw live.
#[tokio::test]
async fn rest_updates_and_a_replay_after_restart_agree_field_for_field() {
    let p = party().await;
    let (mut watcher, _) = p.app.join(&p.host, &p.session).await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    let t = &p.tracks;
    // Adds by id and by metadata (a new track, then an existing one renamed),
    // at the end and at an index; reorders with and without baseVersion;
    // removes by the adder and by the host; both users.
    let a = change_of(&mut host, msg::add("x1", &t[0], None))
        .await
        .entry_id
        .unwrap();
    let new_track = track_meta("mix-new-1", "Brand New");
    let b = change_of(&mut host, msg::add_track("x2", new_track, Some(0)))
        .await
        .entry_id
        .unwrap();
    let c = change_of(&mut guest, msg::add("y1", &t[1], None))
        .await
        .entry_id
        .unwrap();
    let renamed = track_meta("sp2", "Song 2 (Remastered)");
    let d = change_of(&mut guest, msg::add_track("y2", renamed, Some(1)))
        .await
        .entry_id
        .unwrap();
    change_of(&mut host, msg::reorder("x3", &c, 0, Some(4))).await;
    change_of(&mut host, msg::reorder("x4", &a, 1, None)).await;
    change_of(&mut guest, msg::remove("y3", &d)).await;
    change_of(&mut host, msg::remove("x5", &c)).await;
    change_of(&mut host, msg::add("x6", &t[0], Some(1))).await;
    change_of(&mut host, msg::reorder("x7", &b, 0, None)).await;
    change_of(&mut host, msg::remove("x8", &a)).await;
    const N: i64 = 11;
    let mut live = Vec::new();
    while (live.len() as i64) < N {
        if let ServerMsg::Update {
            version,
            change,
            at,
        } = watcher.recv_np().await
        {
            live.push((version, change, at));
        }
    }

    // A new hub on the same database: its memory holds none of this.
    let db_url = p.app.db_url.clone();
    drop((watcher, host, guest));
    p.app.stop().await;
    let app = spawn_app_on(db_url, |_| {}).await;
    let page = app
        .as_user(&p.guest)
        .updates(&p.session, Some(0), None)
        .await
        .unwrap();
    assert_eq!(page.next, None);
    assert_eq!(page.updates.len() as i64, N);
    let mut replay = app.connect().await;
    replay.join(&p.session, &p.guest.token, Some(0)).await;
    assert!(matches!(
        replay.recv_np().await,
        ServerMsg::Resumed { version: N }
    ));
    let mut replayed = Vec::new();
    for _ in 0..N {
        match replay.recv_np().await {
            ServerMsg::Update {
                version,
                change,
                at,
            } => replayed.push((version, change, at)),
            other => panic!("expected a replayed update, got {other:?}"),
        }
    }
    assert_eq!(replayed, live, "the replay is what listeners saw");
    use OpKind::{Add, Remove, Reorder};
    assert_eq!(
        replayed.iter().map(|(_, c, _)| c.op).collect::<Vec<_>>(),
        [Add, Add, Add, Add, Reorder, Reorder, Remove, Remove, Add, Reorder, Remove]
    );
    assert_eq!(
        replayed[3].1.track.as_ref().map(|t| t.id.as_str()),
        Some(t[2].as_str()),
        "an add by metadata of a known spotifyId queues that track"
    );

    // Field for field, version by version.
    let mut track_of: HashMap<String, String> = HashMap::new();
    let index = |i: Option<usize>| i.map(|i| i32::try_from(i).unwrap());
    for (rec, (version, change, at)) in page.updates.iter().zip(&replayed) {
        let v = *version;
        assert_eq!(rec.version, v);
        assert_eq!(rec.kind, change.op.as_str(), "type at {v}");
        assert_eq!(
            rec.entry_id.as_deref(),
            change.entry_id.as_deref(),
            "entryId at {v}"
        );
        assert_eq!(rec.user_id, change.by, "userId at {v}");
        assert_eq!(rec.timestamp, *at, "timestamp at {v}");
        match change.op {
            Add => {
                let track = change.track.as_ref().expect("an add carries its track");
                assert_eq!(rec.track_id.as_ref(), Some(&track.id), "trackId at {v}");
                assert_eq!(
                    (rec.from_index, rec.to_index),
                    (None, index(change.index)),
                    "indexes at {v}"
                );
                track_of.insert(change.entry_id.clone().unwrap(), track.id.clone());
            }
            Remove => {
                assert_eq!(
                    (rec.from_index, rec.to_index),
                    (index(change.index), None),
                    "indexes at {v}"
                );
                assert_eq!(
                    rec.track_id.as_ref(),
                    Some(&track_of[change.entry_id.as_ref().unwrap()]),
                    "trackId at {v}"
                );
            }
            Reorder => {
                assert_eq!(
                    (rec.from_index, rec.to_index),
                    (index(change.from_index), index(change.to_index)),
                    "indexes at {v}"
                );
                assert_eq!(
                    rec.track_id.as_ref(),
                    Some(&track_of[change.entry_id.as_ref().unwrap()]),
                    "trackId at {v}"
                );
            }
            other => panic!("no {other:?} changes here"),
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn authorization_matrix() {
    let p = party().await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    let (_, host_entry) = host.add_acked("h1", &p.tracks[0]).await;
    let _ = guest.recv_np().await; // host's update
    let (_, guest_entry) = guest.add_acked("g1", &p.tracks[1]).await;
    // A member may not reorder, nor remove someone else's entry.
    guest.reorder("g2", &guest_entry, 0, None).await;
    guest.expect_error(Some("g2"), ErrorCode::Forbidden).await;
    guest.remove("g3", &host_entry).await;
    guest.expect_error(Some("g3"), ErrorCode::Forbidden).await;
    // The host may reorder and remove anyone's entry; a member its own.
    host.recv_np().await; // guest's add
    host.reorder("h2", &guest_entry, 0, Some(2)).await;
    assert_eq!(host.applied("h2").await, 3);
    host.reorder("h3", &guest_entry, 1, Some(2)).await;
    host.expect_error(Some("h3"), ErrorCode::Conflict).await;
    guest.recv_np().await; // the reorder
    guest.remove("g4", &guest_entry).await;
    assert_eq!(guest.applied("g4").await, 4);
    host.recv_np().await;
    host.remove("h4", &host_entry).await;
    assert!(matches!(
        host.recv_np().await,
        ServerMsg::Update { version: 5, .. }
    ));
    // A bad token: error unauthorized, then close 4001.
    let mut c = p.app.connect().await;
    c.join(&p.session, "aht_nope", None).await;
    c.expect_error(None, ErrorCode::Unauthorized).await;
    assert_eq!(c.closed().await, Closed::Code(4001));
    // Unknown session: error not_found, close 4004.
    let mut c = p.app.connect().await;
    c.join(&uuid::Uuid::new_v4().to_string(), &p.guest.token, None)
        .await;
    c.expect_error(None, ErrorCode::NotFound).await;
    assert_eq!(c.closed().await, Closed::Code(4004));
    // Only the host ends the session; listeners get `ended` and 4010.
    let refused = p.app.as_user(&p.guest).end_session(&p.session).await;
    assert_eq!(refused.unwrap_err().status(), Some(403));
    // (A typed call is `Ok` only with the route's documented status, 200.)
    p.app
        .as_user(&p.host)
        .end_session(&p.session)
        .await
        .expect("the host ends the session: 200");
    assert!(matches!(
        guest.recv_np().await,
        ServerMsg::Update { version: 5, .. }
    ));
    assert!(matches!(guest.recv_np().await, ServerMsg::Ended { .. }));
    assert_eq!(guest.closed().await, Closed::Code(4010));
    // An ended session cannot be joined.
    let mut c = p.app.connect().await;
    c.join(&p.session, &p.guest.token, None).await;
    assert_eq!(c.closed().await, Closed::Code(4010));
    p.app.stop().await;
}

#[tokio::test]
async fn add_by_metadata_stores_a_new_track_and_never_rewrites_a_known_one() {
    let p = party().await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let meta = |name: &str| TrackBody {
        spotify_id: "4uLU6hMCjMI75M1A2tKUQC".into(),
        name: name.into(),
        artists: vec!["Rick".into()],
        album: "Whenever".into(),
        popularity: None,
        duration_ms: None,
        cover_url: None,
    };
    host.add_track("m1", meta("Never"), None).await;
    let first = match host.recv_np().await {
        ServerMsg::Update { change, .. } => change.track.unwrap(),
        other => panic!("expected update, got {other:?}"),
    };
    assert!(matches!(
        host.recv_np().await,
        ServerMsg::Ack { version: 1, .. }
    ));
    assert_eq!(first.name, "Never");
    // The same spotifyId again, twice in one batch: the same Track, as the
    // catalog knows it — a guest's metadata never rewrites a shared track.
    host.add_track("m2", meta("Gonna"), None).await;
    host.add_track("m3", meta("Give You Up"), None).await;
    let mut names = Vec::new();
    while names.len() < 2 {
        if let ServerMsg::Update { change, .. } = host.recv_np().await {
            let t = change.track.unwrap();
            assert_eq!(t.id, first.id);
            names.push(t.name);
        }
    }
    assert_eq!(names, ["Never", "Never"]);
    let stored: (String, i64) = sqlx::query_as(r#"SELECT "name", (SELECT count(*) FROM "Track" WHERE "spotifyId" = $1) FROM "Track" WHERE "spotifyId" = $1"#)
        .bind("4uLU6hMCjMI75M1A2tKUQC")
        .fetch_one(&p.app.db)
        .await
        .unwrap();
    assert_eq!(stored, ("Never".to_owned(), 1));
    let (_, snap) = p.app.join(&p.guest, &p.session).await;
    assert_eq!(snap.queue.len(), 3);
    assert!(snap.queue.iter().all(|e| e.track.name == "Never"));
    // A failed commit leaves no Track behind either.
    install_commit_failure(&p.app).await;
    set_commit_failure(&p.app, true).await;
    let fresh = TrackBody {
        spotify_id: "freshfresh".into(),
        name: "New".into(),
        artists: vec!["X".into()],
        album: "Y".into(),
        popularity: None,
        duration_ms: None,
        cover_url: None,
    };
    host.add_track("m4", fresh, None).await;
    host.recv_until(|m| matches!(m, ServerMsg::Error { .. }))
        .await;
    assert_eq!(
        count(
            &p.app,
            r#"SELECT count(*) FROM "Track" WHERE "spotifyId" = $1"#,
            "freshfresh"
        )
        .await,
        0
    );
    p.app.stop().await;
}

#[tokio::test]
async fn sessions_commit_together_and_one_failing_session_fails_only_itself() {
    let p = party_with(unlimited).await;
    let mut sessions = vec![(p.session.clone(), p.playlist.clone())];
    for i in 0..5 {
        sessions.push(p.app.create_session(&p.host, &format!("S{i}")).await);
    }
    // Commits touching the first session's playlist fail; the others must not.
    install_commit_failure(&p.app).await;
    sqlx::query(
        r#"CREATE OR REPLACE FUNCTION hub_test_fail_fn() RETURNS trigger AS $$
           BEGIN IF EXISTS (SELECT 1 FROM hub_test_fail) AND NEW."playlistId" = (SELECT "id" FROM "Playlist" WHERE "sessionId" = (SELECT value FROM hub_test_target)) THEN
             RAISE EXCEPTION 'injected'; END IF; RETURN NULL; END $$ LANGUAGE plpgsql"#,
    )
    .execute(&p.app.db)
    .await
    .unwrap();
    sqlx::query("CREATE TABLE hub_test_target (value text)")
        .execute(&p.app.db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO hub_test_target VALUES ($1)")
        .bind(&p.session)
        .execute(&p.app.db)
        .await
        .unwrap();
    set_commit_failure(&p.app, true).await;
    const OPS: usize = 20;
    let mut tasks = Vec::new();
    for (s, _) in sessions.iter().cloned() {
        let (c, _) = p.app.join(&p.host, &s).await;
        let tracks = p.tracks.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = c;
            for i in 0..OPS {
                c.add(&format!("r{i}"), &tracks[i % tracks.len()], None)
                    .await;
            }
            let (mut acked, mut refused, mut versions) = (0, 0, Vec::new());
            while acked + refused < OPS {
                match c.recv_np().await {
                    ServerMsg::Update { version, .. } => versions.push(version),
                    ServerMsg::Ack { .. } => acked += 1,
                    ServerMsg::Error { code, .. } => {
                        assert_eq!(code.as_str(), "unavailable");
                        refused += 1;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            (s, acked, refused, versions)
        }));
    }
    for t in tasks {
        let (s, acked, refused, versions) = t.await.unwrap();
        if s == p.session {
            assert_eq!((acked, refused), (0, OPS), "the failing session");
            assert!(versions.is_empty());
        } else {
            assert_eq!((acked, refused), (OPS, 0), "session {s}");
            assert_eq!(versions, (1..=OPS as i64).collect::<Vec<_>>());
            assert_eq!(stored_queue(&p.app, &s).await.len(), OPS);
        }
    }
    assert!(stored_queue(&p.app, &p.session).await.is_empty());
    p.app.stop().await;
}

#[tokio::test]
async fn a_commit_whose_connection_dies_is_resolved_before_answering() {
    let p = party().await;
    // While `hub_test_kill` has a row, the backend running a commit that
    // writes a PlaylistUpdate kills itself at COMMIT time: the hub sees the
    // connection die mid-COMMIT and must find out what happened before it
    // answers (here: nothing was committed → `unavailable`, never an ack).
    for sql in [
        "CREATE TABLE hub_test_kill (on_ boolean)",
        r#"CREATE FUNCTION hub_test_kill_fn() RETURNS trigger AS $$
           BEGIN IF EXISTS (SELECT 1 FROM hub_test_kill) THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF; RETURN NULL; END $$ LANGUAGE plpgsql"#,
        r#"CREATE CONSTRAINT TRIGGER hub_test_kill_pu AFTER INSERT ON "PlaylistUpdate" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hub_test_kill_fn()"#,
        "INSERT INTO hub_test_kill VALUES (true)",
    ] {
        sqlx::query(sql).execute(&p.app.db).await.unwrap();
    }
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    guest.add("k1", &p.tracks[0], None).await;
    guest.expect_error(Some("k1"), ErrorCode::Unavailable).await;
    assert_eq!(logged_updates(&p.app, &p.playlist).await, 0);
    // The same req once the database behaves: applied exactly once, as version 1.
    sqlx::query("DELETE FROM hub_test_kill")
        .execute(&p.app.db)
        .await
        .unwrap();
    guest.add("k1", &p.tracks[0], None).await;
    assert_eq!(guest.applied("k1").await, 1);
    assert_eq!(logged_updates(&p.app, &p.playlist).await, 1);
    p.app.stop().await;
}

/// Tracks are cached hub-wide; whatever the hub writes replaces the cached
/// copy, so a later add in another session shows the stored metadata.
#[tokio::test]
async fn a_track_the_hub_updates_is_shown_updated_in_every_later_add() {
    let p = party().await;
    // Known without a popularity (0): the one field a later write may fill.
    let unknown_pop = |name: &str| TrackBody {
        spotify_id: "cache-sp-1".into(),
        name: name.into(),
        artists: vec!["Artist".into()],
        album: "Album".into(),
        popularity: None,
        duration_ms: None,
        cover_url: None,
    };
    let host = p.app.as_user(&p.host);
    let id = host
        .upsert_track(&unknown_pop("Old Name"), None)
        .await
        .unwrap()
        .track
        .id;
    let (mut a, _) = p.app.join(&p.host, &p.session).await;
    let added = |m: ServerMsg| match m {
        ServerMsg::Update { change, .. } => change.track.unwrap(),
        other => panic!("expected update, got {other:?}"),
    };
    a.add("c1", &id, None).await;
    assert_eq!(added(a.recv_np().await).popularity, 0);
    a.recv_until(|m| matches!(m, ServerMsg::Ack { .. })).await;

    // Filled over REST: a second session (whose queue does not hold the
    // track) sees it; the known name stays.
    let mut filled = unknown_pop("REST Name");
    filled.popularity = Some(40);
    assert_eq!(host.upsert_track(&filled, None).await.unwrap().track.id, id);
    let (second, _) = p.app.create_session(&p.host, "second").await;
    let (mut b, _) = p.app.join(&p.host, &second).await;
    b.add("c2", &id, None).await;
    let t = added(b.recv_np().await);
    assert_eq!((t.name.as_str(), t.popularity), ("Old Name", 40));
    b.recv_until(|m| matches!(m, ServerMsg::Ack { .. })).await;

    // Filled by an add carrying metadata: a third session sees that too.
    let other = TrackBody {
        spotify_id: "cache-sp-2".into(),
        ..unknown_pop("Second")
    };
    let id2 = host.upsert_track(&other, None).await.unwrap().track.id;
    let mut with_pop = other.clone();
    with_pop.name = "Add Name".into();
    with_pop.popularity = Some(70);
    a.add_track("c3", with_pop, None).await;
    let t = added(a.recv_np().await);
    assert_eq!(
        (t.id.as_str(), t.name.as_str(), t.popularity),
        (id2.as_str(), "Second", 70)
    );
    a.recv_until(|m| matches!(m, ServerMsg::Ack { .. })).await;
    let (third, _) = p.app.create_session(&p.host, "third").await;
    let (mut c, _) = p.app.join(&p.host, &third).await;
    c.add("c4", &id2, None).await;
    let t = added(c.recv_np().await);
    assert_eq!((t.name.as_str(), t.popularity), ("Second", 70));
    p.app.stop().await;
}

/// The session list sorts by `updatedAt`: a queue change moves it (the hub
/// sets it at most every few seconds per session, always on the first).
#[tokio::test]
async fn a_queue_change_sets_the_sessions_updated_at() {
    let p = party().await;
    let stamps = |app: &TestApp, session: &str| {
        let (db, session) = (app.db.clone(), session.to_owned());
        async move {
            sqlx::query_as::<_, (chrono::NaiveDateTime, chrono::NaiveDateTime)>(
                r#"SELECT s."updatedAt", p."updatedAt" FROM "GroupSession" s
                   JOIN "Playlist" p ON p."sessionId" = s."id" WHERE s."id" = $1"#,
            )
            .bind(session)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    let before = stamps(&p.app, &p.session).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    host.add_acked("u1", &p.tracks[0]).await;
    let after = stamps(&p.app, &p.session).await;
    assert!(
        after.0 > before.0,
        "GroupSession.updatedAt {before:?} → {after:?}"
    );
    assert!(
        after.1 > before.1,
        "Playlist.updatedAt {before:?} → {after:?}"
    );
    p.app.stop().await;
}
