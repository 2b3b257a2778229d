//! The listening party over real sockets and a real Postgres (issue 17):
//! playback and what it records for the old app, votes and the order modes,
//! skip votes, guest controls, roles, removing and banning, a host's moves
//! during an add burst, and auto-advance across a restart. Like the other
//! protocol suites these also run against a three-node cluster.

use std::time::Duration;

use audotics_client::{msg, Closed, Ws};
use audotics_protocol::model::Role;
use audotics_protocol::party::{OrderMode, PlayState};
use audotics_protocol::{Change, ChangeDetail, ClientMsg, ErrorCode, OpKind, ServerMsg};

use crate::helpers::*;

/// Upsert a track of `ms` milliseconds; its id.
async fn track_of(app: &TestApp, user: &TestUser, spotify_id: &str, ms: i64) -> String {
    let mut body = track_meta(spotify_id, spotify_id);
    body.duration_ms = Some(ms);
    app.as_user(user)
        .upsert_track(&body, None)
        .await
        .unwrap()
        .track
        .id
}

/// Send `m` and read until its answer (others' updates and presence in
/// between are skipped): its version and update, or its error.
async fn outcome(ws: &mut Ws, m: &ClientMsg) -> Result<(i64, Change), (ErrorCode, String)> {
    let req = audotics_protocol::msg_req(m).unwrap().to_owned();
    ws.send(m).await;
    let mut updates = std::collections::HashMap::new();
    loop {
        match ws.recv().await {
            ServerMsg::Update {
                version, change, ..
            } => {
                updates.insert(version, change);
            }
            ServerMsg::Ack { req: r, version } if r == req => {
                let change = updates
                    .remove(&version)
                    .unwrap_or_else(|| panic!("the update of {req} came before its ack"));
                return Ok((version, change));
            }
            ServerMsg::Error {
                req: Some(r),
                code,
                message,
            } if r == req => return Err((code, message)),
            _ => {}
        }
    }
}

/// Send `m` and expect it applied: its version and change.
async fn apply(ws: &mut Ws, m: &ClientMsg) -> (i64, Change) {
    outcome(ws, m)
        .await
        .unwrap_or_else(|(code, message)| panic!("{m:?} refused: {code:?} {message}"))
}

/// Send `m` and expect `error` `code`.
async fn refused(ws: &mut Ws, m: &ClientMsg, code: ErrorCode) -> String {
    match outcome(ws, m).await {
        Err((c, message)) => {
            assert_eq!(c, code, "{message}");
            message
        }
        Ok((v, c)) => panic!("{m:?} applied at {v}: {c:?}"),
    }
}

/// Queue `track`; the new entry's id.
async fn added(ws: &mut Ws, req: &str, track: &str) -> String {
    let (_, c) = apply(ws, &msg::add(req, track, None)).await;
    c.entry_id.unwrap()
}

fn playback(c: &Change) -> (Option<String>, Option<PlayState>, Option<bool>, String) {
    match &c.detail {
        Some(ChangeDetail::Playback {
            now_playing,
            played,
            reason,
        }) => (
            now_playing.as_ref().map(|n| n.entry_id.clone()),
            now_playing.as_ref().map(|n| n.state),
            played.as_ref().map(|p| p.skipped),
            reason.clone(),
        ),
        other => panic!("expected a playback detail, got {other:?}"),
    }
}

/// TrackInteraction rows of `session` as (user, track, kind), oldest first.
async fn interactions(app: &TestApp, session: &str) -> Vec<(String, String, String)> {
    sqlx::query_as(
        r#"SELECT "userId", "trackId", "type" FROM "TrackInteraction"
           WHERE "hubSessionId" = $1 ORDER BY "timestamp", "type""#,
    )
    .bind(session)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn playback_is_shared_durable_and_recorded_as_the_old_app_reads_it() {
    let p = party_with(unlimited).await;
    let t0 = track_of(&p.app, &p.host, "pb0", 180_000).await;
    let t1 = track_of(&p.app, &p.host, "pb1", 200_000).await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    let e0 = added(&mut guest, "g1", &t0).await;
    let e1 = added(&mut host, "h1", &t1).await;
    // A guest cannot start playback.
    refused(&mut guest, &msg::play("g2", None), ErrorCode::Forbidden).await;
    let (v, c) = apply(&mut host, &msg::play("h2", None)).await;
    assert_eq!(
        (c.op, c.entry_id.as_deref(), c.from_index),
        (OpKind::Play, Some(e0.as_str()), Some(0))
    );
    assert_eq!(playback(&c).1, Some(PlayState::Playing));
    // The guest sees the same change at the same version.
    let (gv, gc) = loop {
        match guest.recv().await {
            ServerMsg::Update {
                version, change, ..
            } if version == v => break (version, change),
            _ => {}
        }
    };
    assert_eq!((gv, gc), (v, c));
    let (_, c) = apply(&mut host, &msg::pause("h3")).await;
    assert_eq!(playback(&c).1, Some(PlayState::Paused));
    refused(&mut host, &msg::pause("h4"), ErrorCode::Conflict).await;
    refused(&mut host, &msg::seek("h5", 999_000), ErrorCode::Invalid).await;
    let (_, c) = apply(&mut host, &msg::seek("h6", 42_000)).await;
    match c.detail {
        Some(ChangeDetail::Playback {
            now_playing: Some(n),
            ..
        }) => {
            assert_eq!((n.position_ms, n.state), (42_000, PlayState::Paused))
        }
        other => panic!("{other:?}"),
    }
    // `next` cuts it short: the old app sees a skip, then a play.
    let (_, c) = apply(&mut host, &msg::next("h7")).await;
    assert_eq!(c.entry_id.as_deref(), Some(e1.as_str()));
    let (now, _, skipped, reason) = playback(&c);
    assert_eq!(
        (now.as_deref(), skipped, reason.as_str()),
        (Some(e1.as_str()), Some(true), "op")
    );
    // Exactly once: the re-sent `next` gets its original ack.
    host.send(&msg::next("h7")).await;
    let again = host.expect_ack("h7").await;
    assert_eq!(again, c_version(&p.app, &p.session).await);
    assert_eq!(
        interactions(&p.app, &p.session).await,
        vec![
            (p.host.id.clone(), t0.clone(), "play".into()),
            (p.host.id.clone(), t1.clone(), "play".into()),
            (p.host.id.clone(), t0.clone(), "skip".into()),
        ]
    );
    // The playlist holds what played and what plays; the update log only
    // the queue's own changes.
    let linked: i64 = count(
        &p.app,
        r#"SELECT count(*) FROM "_PlaylistToTrack" WHERE "A" = $1"#,
        &p.playlist,
    )
    .await;
    assert_eq!(linked, 2);
    let kinds: Vec<String> = sqlx::query_scalar(
        r#"SELECT DISTINCT "type" FROM "PlaylistUpdate" WHERE "playlistId" = $1"#,
    )
    .bind(&p.playlist)
    .fetch_all(&p.app.db)
    .await
    .unwrap();
    assert_eq!(kinds, vec!["add".to_owned()]);
    // A new joiner (and REST) sees the party as it is.
    let snap = p.app.as_user(&p.guest).session(&p.session).await.unwrap();
    let now = snap.party.now_playing.as_ref().unwrap();
    assert_eq!(
        (now.entry_id.as_str(), now.state),
        (e1.as_str(), PlayState::Playing)
    );
    assert_eq!(snap.party.history.len(), 1);
    assert!(snap.party.history[0].skipped);
    assert!(snap.queue.is_empty());
    let (_, live) = p.app.join(&p.guest, &p.session).await;
    assert_eq!(live.party.now_playing.unwrap().entry_id, e1);
    p.app.stop().await;
}

async fn c_version(app: &TestApp, session: &str) -> i64 {
    sqlx::query_scalar("SELECT version FROM hub_session WHERE session_id = $1")
        .bind(session)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// Apply updates to a plain list of entry ids (as a client would).
fn follow(queue: &mut Vec<String>, c: &Change) {
    match c.op {
        OpKind::Add => queue.insert(c.index.unwrap(), c.entry_id.clone().unwrap()),
        OpKind::Remove => {
            queue.remove(c.index.unwrap());
        }
        OpKind::Play | OpKind::Next if c.from_index.is_some() => {
            queue.remove(c.from_index.unwrap());
        }
        _ => {
            if let (Some(from), Some(to)) = (c.from_index, c.to_index) {
                let e = queue.remove(from);
                queue.insert(to, e);
            }
            if let Some(ChangeDetail::Settings { queue: Some(q), .. }) = &c.detail {
                *queue = q.clone();
            }
        }
    }
}

#[tokio::test]
async fn racing_votes_order_the_queue_and_every_listener_converges() {
    let p = party_with(unlimited).await;
    let cal = p.app.register("Cal").await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    let (mut third, _) = p.app.join(&cal, &p.session).await;
    let mut entries = Vec::new();
    for (i, t) in p.tracks.iter().enumerate() {
        entries.push(added(&mut host, &format!("h{i}"), t).await);
    }
    apply(&mut host, &msg::order("h-order", OrderMode::Votes)).await;
    // Nobody moves by hand in a computed order.
    refused(
        &mut guest,
        &msg::reorder("g-mv", &entries[0], 1, None),
        ErrorCode::Forbidden,
    )
    .await;
    refused(
        &mut host,
        &msg::reorder("h-mv", &entries[0], 1, None),
        ErrorCode::Invalid,
    )
    .await;
    // Everyone votes at once, on every entry but the first.
    for (i, e) in entries.iter().enumerate().skip(1) {
        guest.send(&msg::vote(&format!("g{i}"), e, true)).await;
        third
            .send(&msg::vote(&format!("c{i}"), e, i % 2 == 0))
            .await;
        if i >= 3 {
            host.send(&msg::vote(&format!("hv{i}"), e, true)).await;
        }
    }
    let final_version = {
        let snap = loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let s = p.app.as_user(&p.host).session(&p.session).await.unwrap();
            let votes: usize = s.queue.iter().map(|q| q.votes.len()).sum();
            if votes == 4 + 2 + 2 {
                break s;
            }
        };
        snap
    };
    // Votes decide: most first, ties by add time.
    let mut expected = final_version.queue.clone();
    expected.sort_by_key(|q| (std::cmp::Reverse(q.votes.len()), q.added_at));
    let ids = |q: &[audotics_protocol::model::QueueEntry]| {
        q.iter().map(|e| e.entry_id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&final_version.queue), ids(&expected));
    // Each listener, applying what it was sent, has the same queue.
    for ws in [&mut host, &mut guest, &mut third] {
        let mut q = entries.clone();
        let mut seen = 5;
        let mut v = 0;
        while v < final_version.version {
            match ws.recv().await {
                ServerMsg::Update {
                    version, change, ..
                } => {
                    if version > seen {
                        follow(&mut q, &change);
                        seen = version;
                    }
                    v = version;
                }
                _ => continue,
            }
        }
        assert_eq!(q, ids(&final_version.queue));
    }
    p.app.stop().await;
}

#[tokio::test]
async fn fair_order_puts_a_late_guests_first_track_before_anyones_second() {
    let p = party_with(unlimited).await;
    let cal = p.app.register("Cal").await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    apply(&mut host, &msg::order("h1", OrderMode::Fair)).await;
    for i in 0..4 {
        added(&mut guest, &format!("g{i}"), &p.tracks[i]).await;
    }
    let (mut late, _) = p.app.join(&cal, &p.session).await;
    let (_, c) = apply(&mut late, &msg::add("c1", &p.tracks[4], None)).await;
    assert_eq!(c.index, Some(1), "the late guest's track goes second");
    let snap = p.app.as_user(&p.host).session(&p.session).await.unwrap();
    let adders: Vec<&str> = snap.queue.iter().map(|q| q.added_by.as_str()).collect();
    assert_eq!(
        adders,
        [
            p.guest.id.as_str(),
            cal.id.as_str(),
            p.guest.id.as_str(),
            p.guest.id.as_str(),
            p.guest.id.as_str()
        ]
    );
    p.app.stop().await;
}

#[tokio::test]
async fn a_skip_vote_crosses_the_threshold_when_someone_leaves() {
    let p = party_with(unlimited).await;
    let cal = p.app.register("Cal").await;
    let t0 = track_of(&p.app, &p.host, "sv0", 300_000).await;
    let t1 = track_of(&p.app, &p.host, "sv1", 300_000).await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    let (mut third, _) = p.app.join(&cal, &p.session).await;
    added(&mut host, "h1", &t0).await;
    added(&mut host, "h2", &t1).await;
    apply(&mut host, &msg::play("h3", None)).await;
    // 1 vote of 3 online: half needs 2.
    let (v, _) = apply(&mut guest, &msg::skip_vote("g1", true)).await;
    assert_eq!(c_version(&p.app, &p.session).await, v, "no skip yet");
    // Cal leaves: 1 of 2 is enough, and the hub skips by itself.
    third.close(1000).await;
    let c = loop {
        match host.recv_np().await {
            ServerMsg::Update { change, .. } if change.op == OpKind::Next => break change,
            _ => continue,
        }
    };
    assert_eq!(c.by, None);
    let (_, _, skipped, reason) = playback(&c);
    assert_eq!((skipped, reason.as_str()), (Some(true), "skipVotes"));
    let rows = interactions(&p.app, &p.session).await;
    assert!(
        rows.contains(&(p.guest.id.clone(), t0.clone(), "skip".into())),
        "{rows:?}"
    );
    assert!(
        rows.contains(&(p.host.id.clone(), t1.clone(), "play".into())),
        "{rows:?}"
    );
    p.app.stop().await;
}

#[tokio::test]
async fn a_track_advances_at_its_end_also_across_a_restart() {
    let app = spawn_app_with(unlimited).await;
    let host = app.register("Hana").await;
    let (session, _) = app.create_session(&host, "Auto").await;
    let short = track_of(&app, &host, "aa0", 1_000).await;
    let short2 = track_of(&app, &host, "aa1", 1_000).await;
    let long = track_of(&app, &host, "aa2", 600_000).await;
    let (mut ws, _) = app.join(&host, &session).await;
    let e0 = added(&mut ws, "h1", &short).await;
    let e1 = added(&mut ws, "h2", &short2).await;
    let e2 = added(&mut ws, "h3", &long).await;
    apply(&mut ws, &msg::play("h4", None)).await;
    // One second later the hub plays the next by itself.
    let c = loop {
        match ws.recv_np().await {
            ServerMsg::Update { change, .. } if change.op == OpKind::Next => break change,
            _ => continue,
        }
    };
    assert_eq!(c.entry_id.as_deref(), Some(e1.as_str()));
    let (_, _, skipped, reason) = playback(&c);
    assert_eq!((skipped, reason.as_str()), (Some(false), "ended"));
    // Stopped now, e1 ends while no hub runs; the next hub catches up.
    drop(ws);
    let db_url = app.db_url.clone();
    app.stop().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let restarted = chrono::Utc::now();
    let app = spawn_app_on(db_url, unlimited).await;
    let (_, snap) = app.join(&host, &session).await;
    let snap = if snap.party.now_playing.as_ref().map(|n| n.entry_id.as_str()) == Some(e2.as_str())
    {
        snap
    } else {
        tokio::time::sleep(Duration::from_millis(500)).await;
        app.as_user(&host).session(&session).await.unwrap()
    };
    let now = snap.party.now_playing.as_ref().expect("something plays");
    assert_eq!(now.entry_id, e2);
    let played: Vec<(&str, bool)> = snap
        .party
        .history
        .iter()
        .map(|h| (h.entry_id.as_str(), h.skipped))
        .collect();
    assert_eq!(played, [(e0.as_str(), false), (e1.as_str(), false)]);
    // It started when e1 ended (while no hub ran), not when one came back.
    assert_eq!(now.started_at, snap.party.history[1].ended_at);
    assert!(
        now.started_at < restarted,
        "{:?} vs {restarted:?}",
        now.started_at
    );
    app.stop().await;
}

#[tokio::test]
async fn a_removed_member_is_closed_and_a_banned_one_cannot_rejoin() {
    let p = party_with(unlimited).await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    refused(
        &mut guest,
        &msg::kick("g1", &p.host.id, false),
        ErrorCode::Forbidden,
    )
    .await;
    // Removed: 4011, and may join again (a member again).
    let (_, c) = apply(&mut host, &msg::kick("h1", &p.guest.id, false)).await;
    assert_eq!(c.op, OpKind::Kick);
    assert_eq!(guest.closed().await, Closed::Code(4011));
    let member = |app: &TestApp| {
        let (db, s, u) = (app.db.clone(), p.session.clone(), p.guest.id.clone());
        async move {
            sqlx::query_scalar::<_, bool>(r#"SELECT EXISTS (SELECT 1 FROM "_GroupSessionToUser" WHERE "A" = $1 AND "B" = $2)"#)
                .bind(s)
                .bind(u)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    assert!(!member(&p.app).await);
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    assert!(member(&p.app).await);
    // Banned: 4012, and the next join is refused.
    apply(&mut host, &msg::kick("h2", &p.guest.id, true)).await;
    assert_eq!(guest.closed().await, Closed::Code(4012));
    let mut again = p.app.connect().await;
    again.join(&p.session, &p.guest.token, None).await;
    again.expect_error(None, ErrorCode::Forbidden).await;
    assert_eq!(again.closed().await, Closed::Code(4012));
    let snap = p.app.as_user(&p.host).session(&p.session).await.unwrap();
    assert_eq!(snap.party.banned, vec![p.guest.id.clone()]);
    apply(&mut host, &msg::unban("h3", &p.guest.id)).await;
    let (_, snap) = p.app.join(&p.guest, &p.session).await;
    assert_eq!(snap.you.role, Role::Member);
    p.app.stop().await;
}

#[tokio::test]
async fn the_host_hands_over_names_cohosts_and_sets_guest_controls() {
    let p = party_with(unlimited).await;
    let cal = p.app.register("Cal").await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    let (mut third, _) = p.app.join(&cal, &p.session).await;
    // Guest controls: no adds, then a cap of one queued track.
    let no_adds = ClientMsg::Settings(audotics_protocol::Settings {
        guests_add: Some(false),
        ..msg::settings("h1")
    });
    apply(&mut host, &no_adds).await;
    refused(
        &mut guest,
        &msg::add("g1", &p.tracks[0], None),
        ErrorCode::Forbidden,
    )
    .await;
    let cap = ClientMsg::Settings(audotics_protocol::Settings {
        guests_add: Some(true),
        guest_queue_cap: Some(1),
        ..msg::settings("h2")
    });
    apply(&mut host, &cap).await;
    added(&mut guest, "g2", &p.tracks[0]).await;
    refused(
        &mut guest,
        &msg::add("g3", &p.tracks[1], None),
        ErrorCode::TooLarge,
    )
    .await;
    // A co-host may manage but not name co-hosts; the host hands over.
    refused(
        &mut guest,
        &msg::role("g4", &cal.id, Role::Cohost),
        ErrorCode::Forbidden,
    )
    .await;
    apply(&mut host, &msg::role("h3", &p.guest.id, Role::Cohost)).await;
    added(&mut guest, "g5", &p.tracks[1]).await;
    refused(
        &mut guest,
        &msg::role("g6", &cal.id, Role::Cohost),
        ErrorCode::Forbidden,
    )
    .await;
    let (_, c) = apply(&mut host, &msg::role("h4", &cal.id, Role::Host)).await;
    match c.detail {
        Some(ChangeDetail::Role { host_id, cohosts }) => {
            assert_eq!(host_id, cal.id);
            let mut want = vec![p.host.id.clone(), p.guest.id.clone()];
            want.sort();
            assert_eq!(cohosts, want);
        }
        other => panic!("{other:?}"),
    }
    let snap = p.app.as_user(&cal).session(&p.session).await.unwrap();
    assert_eq!(
        (snap.session.host_id.as_str(), snap.you.role),
        (cal.id.as_str(), Role::Host)
    );
    // The new host's powers follow at once.
    apply(&mut third, &msg::role("c1", &p.host.id, Role::Member)).await;
    refused(&mut host, &msg::play("h5", None), ErrorCode::Forbidden).await;
    p.app.stop().await;
}

/// Issue 17: a host's move never fails because somebody added a track at
/// the same moment (moves are rebased over appends).
#[tokio::test]
async fn a_hosts_moves_succeed_during_an_add_burst() {
    let p = party_with(unlimited).await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let (mut guest, _) = p.app.join(&p.guest, &p.session).await;
    let mut entries = Vec::new();
    for (i, t) in p.tracks.iter().enumerate() {
        entries.push(added(&mut host, &format!("h{i}"), t).await);
    }
    // The guest floods adds while the host moves, each move based on the
    // last version the host had seen.
    let tracks = p.tracks.clone();
    let burst = tokio::spawn(async move {
        for i in 0..40 {
            guest
                .send(&msg::add(&format!("g{i}"), &tracks[i % 5], None))
                .await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        guest
    });
    let mut seen = 5;
    let mut refused_moves = Vec::new();
    for i in 0..10 {
        let req = format!("m{i}");
        host.send(&msg::reorder(
            &req,
            &entries[i % 5],
            (i * 3) % 5,
            Some(seen),
        ))
        .await;
        loop {
            match host.recv_np().await {
                ServerMsg::Update { version, .. } => seen = version,
                ServerMsg::Ack { req: r, version } if r == req => {
                    seen = seen.max(version);
                    break;
                }
                ServerMsg::Error {
                    req: Some(r),
                    message,
                    ..
                } if r == req => {
                    refused_moves.push(message);
                    break;
                }
                _ => {}
            }
        }
    }
    burst.await.unwrap();
    assert!(refused_moves.is_empty(), "moves refused: {refused_moves:?}");
    p.app.stop().await;
}

/// A big screen joins to watch: it sees what everyone sees, but it is not a
/// member, not in presence, does not count in a skip vote's share of the
/// room, and cannot change anything.
#[tokio::test]
async fn a_screen_that_watches_is_not_in_the_room() {
    let p = party_with(unlimited).await;
    let tv = p.app.register("TV").await;
    let t0 = track_of(&p.app, &p.host, "tv0", 300_000).await;
    let t1 = track_of(&p.app, &p.host, "tv1", 300_000).await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    let mut screen = p.app.connect().await;
    screen.send(&msg::watch(&p.session, &tv.token)).await;
    let snap = match screen.recv().await {
        ServerMsg::Snapshot(s) => s,
        other => panic!("expected a snapshot, got {other:?}"),
    };
    assert!(snap.members.iter().all(|m| m.user_id != tv.id));
    while let Some(m) = host.try_recv().await {
        if let ServerMsg::Presence { user_id, .. } = m {
            assert_ne!(user_id, tv.id, "the screen appeared in presence");
        }
    }
    added(&mut host, "h1", &t0).await;
    added(&mut host, "h2", &t1).await;
    // The screen follows the queue.
    let (_, c) = screen.expect_update().await;
    assert_eq!(c.op, OpKind::Add);
    // Not a member: a REST read by the screen's account is refused.
    let r = p.app.as_user(&tv).session(&p.session).await;
    assert!(r.is_err(), "the screen's account became a member: {r:?}");
    // Its ops are refused, and change nothing.
    let before = c_version(&p.app, &p.session).await;
    screen.send(&msg::add("tv1", &t0, None)).await;
    match screen
        .recv_until(|m| matches!(m, ServerMsg::Error { .. }))
        .await
    {
        ServerMsg::Error { code, req, .. } => {
            assert_eq!((code, req.as_deref()), (ErrorCode::Forbidden, Some("tv1")))
        }
        _ => unreachable!(),
    }
    assert_eq!(c_version(&p.app, &p.session).await, before);
    // The host alone is the room: one skip vote is half of it.
    apply(&mut host, &msg::play("h3", None)).await;
    apply(&mut host, &msg::skip_vote("h4", true)).await;
    let c = loop {
        match host.recv().await {
            ServerMsg::Update { change, .. } if change.op == OpKind::Next => break change,
            ServerMsg::Presence { user_id, .. } => {
                assert_ne!(user_id, tv.id, "the screen appeared in presence")
            }
            _ => continue,
        }
    };
    assert_eq!(c.by, None);
    p.app.stop().await;
}
