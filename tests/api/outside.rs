//! Living beside the old app on one database: sessions it made open with
//! their tracks, and what it changes while a session is live (tracks
//! linked, unlinked or `set`, members added or removed, `active`, deletes)
//! reaches every listener as versioned updates, or as the session's end.
//! The old app is played by a second connection pool, which (unlike the
//! hub's) does not call itself `audotics-hub`.

use std::time::{Duration, Instant};

use audotics_client::{Closed, Ws};
use audotics_protocol::model::Snapshot;
use audotics_protocol::{ChangeDetail, OpKind, ServerMsg};
use sqlx::PgPool;

use crate::helpers::*;

/// The old app's connection to the hub's database.
async fn old_app(app: &TestApp) -> PgPool {
    PgPool::connect(&app.db_url)
        .await
        .expect("the old app connects")
}

async fn exec(db: &PgPool, sql: &str, args: &[&str]) {
    let mut q = sqlx::query(sql);
    for a in args {
        q = q.bind(*a);
    }
    q.execute(db).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Tracks `_PlaylistToTrack` holds for the playlist, sorted.
async fn links(db: &PgPool, playlist: &str) -> Vec<String> {
    sqlx::query_scalar(r#"SELECT "B" FROM "_PlaylistToTrack" WHERE "A" = $1 ORDER BY "B""#)
        .bind(playlist)
        .fetch_all(db)
        .await
        .unwrap()
}

fn queue_tracks(s: &Snapshot) -> Vec<String> {
    s.queue.iter().map(|e| e.track.id.clone()).collect()
}

/// The next `update` within 3 s, checking it follows `version`.
async fn next_update(ws: &mut Ws, version: &mut i64) -> audotics_protocol::Change {
    let got = tokio::time::timeout(
        Duration::from_secs(3),
        ws.recv_until(|m| matches!(m, ServerMsg::Update { .. })),
    )
    .await
    .expect("the change reached the listener within 3 s");
    match got {
        ServerMsg::Update {
            version: v, change, ..
        } => {
            assert_eq!(v, *version + 1, "versions are consecutive");
            *version = v;
            change
        }
        _ => unreachable!(),
    }
}

/// A session the old app made its way: a GroupSession with members, a
/// Playlist its creator owns, tracks connected to it. Returns (session,
/// playlist).
async fn old_session(
    db: &PgPool,
    host: &TestUser,
    guest: &TestUser,
    tracks: &[String],
) -> (String, String) {
    let (sid, pid) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    exec(
        db,
        r#"INSERT INTO "GroupSession" ("id", "name", "updatedAt") VALUES ($1, 'Old party', now())"#,
        &[&sid],
    )
    .await;
    exec(
        db,
        r#"INSERT INTO "_GroupSessionToUser" ("A", "B") VALUES ($1, $2), ($1, $3)"#,
        &[&sid, &host.id, &guest.id],
    )
    .await;
    exec(
        db,
        r#"INSERT INTO "Playlist" ("id", "name", "updatedAt", "creatorId", "sessionId")
           VALUES ($1, 'Old party', now(), $2, $3)"#,
        &[&pid, &host.id, &sid],
    )
    .await;
    for t in tracks {
        exec(
            db,
            r#"INSERT INTO "_PlaylistToTrack" ("A", "B") VALUES ($1, $2)"#,
            &[&pid, t],
        )
        .await;
    }
    (sid, pid)
}

#[tokio::test]
async fn a_session_the_old_app_made_opens_with_its_tracks_as_the_queue() {
    let p = party().await;
    let old = old_app(&p.app).await;
    let tracks = vec![
        p.tracks[2].clone(),
        p.tracks[0].clone(),
        p.tracks[1].clone(),
    ];
    let (sid, pid) = old_session(&old, &p.host, &p.guest, &tracks).await;
    let (_host, snap) = p.app.join(&p.host, &sid).await;
    // Catalog order (oldest track first): the party's tracks were made in
    // order 0, 1, 2.
    assert_eq!(queue_tracks(&snap), p.tracks[..3].to_vec());
    assert_eq!(snap.version, 3, "each adopted track is a versioned add");
    assert_eq!(snap.session.host_id, p.host.id);
    let (_guest, again) = p.app.join(&p.guest, &sid).await;
    assert_eq!(queue_tracks(&again), queue_tracks(&snap));
    // The links are untouched, and the log shows the adds as made outside.
    let mut linked = tracks.clone();
    linked.sort();
    assert_eq!(links(&old, &pid).await, linked);
    let page = p
        .app
        .as_user(&p.host)
        .updates(&sid, None, None)
        .await
        .unwrap();
    assert_eq!(page.updates.len(), 3);
    assert!(page
        .updates
        .iter()
        .all(|u| u.kind == "add" && u.user_id.is_none()));
    // The same queue after a restart.
    let db_url = p.app.db_url.clone();
    p.app.stop().await;
    let app = spawn_app_on(db_url, |_| {}).await;
    let mut ws = app.connect().await;
    let snap2 = ws.join_snapshot(&sid, &p.host.token).await;
    assert_eq!(queue_tracks(&snap2), queue_tracks(&snap));
    assert_eq!(snap2.version, 3);
}

#[tokio::test]
async fn the_old_apps_changes_reach_listeners_as_versioned_updates() {
    let p = party().await;
    let old = old_app(&p.app).await;
    let (mut host, snap) = p.app.join(&p.host, &p.session).await;
    let mut v = snap.version;
    let (_, t0) = host.add_acked("h1", &p.tracks[0]).await;
    v += 1;
    let _ = t0;

    // It connects a track: appended, made outside (`by` null).
    let started = Instant::now();
    exec(
        &old,
        r#"INSERT INTO "_PlaylistToTrack" ("A", "B") VALUES ($1, $2)"#,
        &[&p.playlist, &p.tracks[1]],
    )
    .await;
    let c = next_update(&mut host, &mut v).await;
    assert_eq!(
        (c.op, c.by.as_deref(), c.index),
        (OpKind::Add, None, Some(1))
    );
    assert_eq!(c.track.unwrap().id, p.tracks[1]);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // It `set`s the playlist's tracks (Prisma: delete all links, insert the
    // new ones, in one transaction): the first track goes, two come.
    let mut tx = old.begin().await.unwrap();
    sqlx::query(r#"DELETE FROM "_PlaylistToTrack" WHERE "A" = $1"#)
        .bind(&p.playlist)
        .execute(&mut *tx)
        .await
        .unwrap();
    for t in [&p.tracks[1], &p.tracks[2], &p.tracks[3]] {
        sqlx::query(r#"INSERT INTO "_PlaylistToTrack" ("A", "B") VALUES ($1, $2)"#)
            .bind(&p.playlist)
            .bind(t)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let mut ops = Vec::new();
    for _ in 0..3 {
        let c = next_update(&mut host, &mut v).await;
        ops.push((c.op, c.track.map(|t| t.id)));
    }
    assert!(ops.contains(&(OpKind::Remove, None)), "{ops:?}");
    assert!(
        ops.contains(&(OpKind::Add, Some(p.tracks[2].clone()))),
        "{ops:?}"
    );
    assert!(
        ops.contains(&(OpKind::Add, Some(p.tracks[3].clone()))),
        "{ops:?}"
    );
    let snap = p.app.as_user(&p.host).session(&p.session).await.unwrap();
    assert_eq!(queue_tracks(&snap), p.tracks[1..4].to_vec());
    assert_eq!(snap.version, v);
    let mut want = p.tracks[1..4].to_vec();
    want.sort();
    assert_eq!(
        links(&old, &p.playlist).await,
        want,
        "_PlaylistToTrack = the queue"
    );

    // It adds a member, then removes them (who is listening: closed 4003).
    let nina = p.app.register("Nina").await;
    exec(
        &old,
        r#"INSERT INTO "_GroupSessionToUser" ("A", "B") VALUES ($1, $2)"#,
        &[&p.session, &nina.id],
    )
    .await;
    let c = next_update(&mut host, &mut v).await;
    assert_eq!(c.op, OpKind::Member);
    assert!(
        matches!(&c.detail, Some(ChangeDetail::Member { user_id, member: true, .. }) if *user_id == nina.id),
        "{c:?}"
    );
    let (mut nina_ws, nina_snap) = p.app.join(&nina, &p.session).await;
    assert_eq!(nina_snap.version, v);
    exec(
        &old,
        r#"DELETE FROM "_GroupSessionToUser" WHERE "A" = $1 AND "B" = $2"#,
        &[&p.session, &nina.id],
    )
    .await;
    let c = next_update(&mut host, &mut v).await;
    assert!(
        matches!(&c.detail, Some(ChangeDetail::Member { member: false, .. })),
        "{c:?}"
    );
    assert_eq!(nina_ws.closed().await, Closed::Code(4003));
    let snap = p.app.as_user(&p.host).session(&p.session).await.unwrap();
    assert!(!snap.members.iter().any(|m| m.user_id == nina.id));

    // A resume replays both logs in version order.
    let mut late = p.app.connect().await;
    late.join(&p.session, &p.host.token, Some(1)).await;
    assert!(matches!(late.recv().await, ServerMsg::Resumed { .. }));
    for want in 2..=v {
        match late
            .recv_until(|m| matches!(m, ServerMsg::Update { .. }))
            .await
        {
            ServerMsg::Update { version, .. } => assert_eq!(version, want),
            _ => unreachable!(),
        }
    }
}

#[tokio::test]
async fn a_session_the_old_app_ends_or_deletes_ends_for_everyone() {
    let p = party().await;
    let old = old_app(&p.app).await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    exec(
        &old,
        r#"UPDATE "GroupSession" SET "active" = false WHERE "id" = $1"#,
        &[&p.session],
    )
    .await;
    let ended = tokio::time::timeout(
        Duration::from_secs(3),
        host.recv_until(|m| matches!(m, ServerMsg::Ended { .. })),
    )
    .await;
    assert!(ended.is_ok(), "ended within 3 s");
    assert_eq!(host.closed().await, Closed::Code(4010));

    // Deleted while someone listens: ended, 4010; then 404 and 4004.
    let (other, _) = p.app.create_session(&p.host, "Second").await;
    let (mut host2, _) = p.app.join(&p.host, &other).await;
    let pid: String = sqlx::query_scalar(r#"SELECT "id" FROM "Playlist" WHERE "sessionId" = $1"#)
        .bind(&other)
        .fetch_one(&old)
        .await
        .unwrap();
    // What Prisma's groupSession.delete does: the playlist stays, detached.
    exec(
        &old,
        r#"DELETE FROM "GroupSession" WHERE "id" = $1"#,
        &[&other],
    )
    .await;
    let ended = tokio::time::timeout(
        Duration::from_secs(3),
        host2.recv_until(|m| matches!(m, ServerMsg::Ended { .. })),
    )
    .await;
    assert!(ended.is_ok(), "ended within 3 s");
    assert_eq!(host2.closed().await, Closed::Code(4010));
    let r = p.app.as_user(&p.host).session(&other).await.unwrap_err();
    assert_eq!(r.status(), Some(404));
    let mut again = p.app.connect().await;
    again.join(&other, &p.host.token, None).await;
    assert_eq!(again.closed().await, Closed::Code(4004));
    let detached: Option<String> =
        sqlx::query_scalar(r#"SELECT "sessionId" FROM "Playlist" WHERE "id" = $1"#)
            .bind(&pid)
            .fetch_one(&old)
            .await
            .unwrap();
    assert_eq!(detached, None);
}

/// Ops committed together still get strictly increasing timestamps, so
/// the old app's `ORDER BY timestamp DESC` is the hub's order.
#[tokio::test]
async fn log_timestamps_strictly_increase_within_a_playlist() {
    let p = party_with(unlimited).await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    for i in 0..12 {
        host.add(&format!("t{i}"), &p.tracks[i % 5], None).await;
    }
    for i in 0..12 {
        let req = format!("t{i}");
        host.recv_until(|m| matches!(m, ServerMsg::Ack { req: r, .. } if *r == req))
            .await;
    }
    let rows: Vec<(i64, chrono::NaiveDateTime)> = sqlx::query_as(
        r#"SELECT "hubVersion", "timestamp" FROM "PlaylistUpdate" WHERE "playlistId" = $1
           ORDER BY "timestamp" DESC"#,
    )
    .bind(&p.playlist)
    .fetch_all(&p.app.db)
    .await
    .unwrap();
    assert_eq!(rows.len(), 12);
    for w in rows.windows(2) {
        assert!(w[0].1 > w[1].1, "timestamps tie or go back: {rows:?}");
        assert!(
            w[0].0 > w[1].0,
            "newest first is highest version first: {rows:?}"
        );
    }
}

/// The kinds the old app's recommendations weigh are stored; others are
/// refused with `invalid` naming `kind`, and nothing is stored.
#[tokio::test]
async fn interaction_kinds_are_the_old_apps_set() {
    let p = party().await;
    let (mut host, _) = p.app.join(&p.host, &p.session).await;
    for (i, kind) in [
        "play",
        "skip",
        "like",
        "dislike",
        "save",
        "share",
        "add_to_playlist",
    ]
    .into_iter()
    .enumerate()
    {
        let req = format!("k{i}");
        host.interaction(&req, &p.tracks[0], kind).await;
        host.recv_until(|m| matches!(m, ServerMsg::Ack { req: r, .. } if *r == req))
            .await;
    }
    host.interaction("wave", &p.tracks[0], "wave").await;
    let msg = host
        .expect_error(Some("wave"), audotics_protocol::ErrorCode::Invalid)
        .await;
    assert!(msg.starts_with("kind"), "{msg}");
    assert_eq!(logged_interactions(&p.app, &p.session).await, 7);
}
