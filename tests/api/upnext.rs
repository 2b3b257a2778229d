//! "Up next for this room" over real sockets (issue 19): suggestions come
//! live to every listener that asks for them at join, reflect who is online and their tastes, never
//! name a queued or played track, follow the room within a second, and REST
//! answers the same list. (The engine's own quality is measured offline:
//! `audotics-suggest-eval`, BENCHMARKS.)

use std::time::{Duration, Instant};

use audotics_client::rest::PreferencesBody;
use audotics_client::{msg, Ws};
use audotics_hub::config::Config;
use audotics_protocol::model::TrackFeatures;
use audotics_protocol::party::Suggested;
use audotics_protocol::ServerMsg;
use serde_json::json;

use crate::helpers::*;

fn features(energy: f64, acoustic: f64) -> TrackFeatures {
    TrackFeatures {
        danceability: energy,
        energy,
        key: 5,
        loudness: -20.0 + 15.0 * energy,
        mode: 1,
        speechiness: 0.05,
        acousticness: acoustic,
        instrumentalness: 0.0,
        liveness: 0.1,
        valence: energy,
        tempo: 80.0 + 60.0 * energy,
    }
}

/// The next `suggestions` frame within `within` with a non-empty list.
async fn suggestions(ws: &mut Ws, within: Duration) -> Vec<Suggested> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no suggestions within {within:?}");
        match tokio::time::timeout(left, ws.recv()).await {
            Ok(ServerMsg::Suggestions { items, .. }) if !items.is_empty() => return items,
            Ok(_) => {}
            Err(_) => panic!("no suggestions within {within:?}"),
        }
    }
}

/// Join asking for `suggestions` frames; the snapshot comes first.
async fn join_for_suggestions(app: &TestApp, user: &TestUser, session: &str) -> Ws {
    let mut ws = app.connect().await;
    ws.send(&msg::join_with_suggestions(session, &user.token, None))
        .await;
    match ws.recv().await {
        ServerMsg::Snapshot(_) => ws,
        other => panic!("expected snapshot, got {other:?}"),
    }
}

fn energy_of(s: &Suggested, loud: &[String]) -> bool {
    loud.contains(&s.track.id)
}

#[tokio::test]
async fn suggestions_follow_the_room_and_never_name_a_queued_track() {
    let app = spawn_app_with(unlimited).await;
    let ann = app.register("Ann").await;
    let ben = app.register("Ben").await;
    let (session, _) = app.create_session(&ann, "Up next").await;
    // Twelve loud dance tracks, twelve quiet acoustic ones.
    let mut loud = Vec::new();
    let mut quiet = Vec::new();
    for i in 0..12 {
        let t = track_meta(&format!("loud{i}"), &format!("Loud {i}"));
        let f = features(0.9, 0.05);
        loud.push(
            app.as_user(&ann)
                .upsert_track(&t, Some(&f))
                .await
                .unwrap()
                .track
                .id,
        );
        let t = track_meta(&format!("quiet{i}"), &format!("Quiet {i}"));
        let f = features(0.15, 0.9);
        quiet.push(
            app.as_user(&ann)
                .upsert_track(&t, Some(&f))
                .await
                .unwrap()
                .track
                .id,
        );
    }
    let prefs = |lo: f64, hi: f64, alo: f64, ahi: f64| PreferencesBody {
        top_tracks: vec![],
        top_artists: vec![],
        genres: vec![],
        features: Some(json!({
            "energy": {"min": lo, "max": hi},
            "acousticness": {"min": alo, "max": ahi},
        })),
    };
    app.as_user(&ann)
        .put_preferences(&prefs(0.7, 1.0, 0.0, 0.3))
        .await
        .unwrap();
    app.as_user(&ben)
        .put_preferences(&prefs(0.0, 0.35, 0.6, 1.0))
        .await
        .unwrap();
    // Ann alone: her taste.
    let mut a = join_for_suggestions(&app, &ann, &session).await;
    // A listener that did not ask gets none.
    let (mut quiet_listener, _) = app.join(&ann, &session).await;
    let first = suggestions(&mut a, Duration::from_secs(10)).await;
    let loud_share = first.iter().filter(|s| energy_of(s, &loud)).count();
    assert!(
        loud_share * 10 >= first.len() * 8,
        "Ann alone got {first:?}"
    );
    assert!(first.iter().all(|s| !s.reason.is_empty()));
    // One tap adds a suggestion; within a second it is no longer suggested.
    let picked = first[0].track.id.clone();
    a.send(&msg::add("a1", &picked, None)).await;
    let started = Instant::now();
    let next = loop {
        let items = suggestions(&mut a, Duration::from_secs(3)).await;
        if items.iter().all(|s| s.track.id != picked) {
            break items;
        }
    };
    let took = started.elapsed();
    eprintln!("suggestions followed an add after {took:?}");
    assert!(next.iter().all(|s| s.track.id != picked));
    // Ben joins: the quiet member counts too.
    let mut b = join_for_suggestions(&app, &ben, &session).await;
    let both = loop {
        let items = suggestions(&mut b, Duration::from_secs(5)).await;
        if items.iter().any(|s| quiet.contains(&s.track.id)) {
            break items;
        }
    };
    assert!(both.iter().any(|s| quiet.contains(&s.track.id)), "{both:?}");
    assert!(both.iter().all(|s| s.track.id != picked));
    let mut ids: Vec<&str> = both.iter().map(|s| s.track.id.as_str()).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no duplicates");
    while let Some(m) = quiet_listener.try_recv().await {
        assert!(
            !matches!(m, ServerMsg::Suggestions { .. }),
            "a listener that did not ask got {m:?}"
        );
    }
    // REST answers the latest list.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_, rest) = app.as_user(&ben).suggestions(&session).await.unwrap();
    assert!(rest.iter().all(|s| s.track.id != picked));
    assert!(rest.iter().any(|s| quiet.contains(&s.track.id)));
    // Strangers may not read them.
    let eve = app.register("Eve").await;
    let err = app.as_user(&eve).suggestions(&session).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    app.stop().await;
}

/// The next join answer for `playlist` to cross NATS within `within`:
/// whether it carried a `suggestions` frame (`None`: no answer came).
async fn next_join_answer(
    sub: &mut async_nats::Subscriber,
    playlist: &str,
    within: Duration,
) -> Option<bool> {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, sub.next()).await {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&m.payload) else {
            continue;
        };
        let opening = &v["opening"];
        if opening["playlist_id"] == playlist {
            let carried = !opening["suggestions"].is_null();
            eprintln!(
                "join answer: {} bytes, suggestions {carried}",
                m.payload.len()
            );
            return Some(carried);
        }
    }
    None
}

/// Cluster: a joiner on a node that does not own the session is sent the
/// latest `suggestions` frame over NATS only when it asked for them (its
/// node would drop it).
#[tokio::test]
async fn a_remote_joiner_is_sent_suggestions_only_when_it_asked() {
    let nats = crate::nats::shared_url();
    let mut config = Config::for_database_url(fresh_database().await);
    config.pool_size = 5;
    unlimited(&mut config);
    let name = format!("t{}", uuid::Uuid::new_v4().simple());
    let app = spawn_cluster(config, &nats, &name, 2).await;
    let ann = app.register("Ann").await;
    let ben = app.register("Ben").await;
    let (session, playlist) = app.create_session(&ann, "Up next, two nodes").await;
    for i in 0..8 {
        let t = track_meta(&format!("remote{i}"), &format!("Remote {i}"));
        app.as_user(&ann)
            .upsert_track(&t, Some(&features(0.9, 0.05)))
            .await
            .unwrap();
    }
    // Ann joins on the first node, which takes the session, and gets a list.
    let mut a = Ws::connect(&app.rest.ws_url()).await;
    a.send(&msg::join_with_suggestions(&session, &ann.token, None))
        .await;
    assert!(matches!(a.recv().await, ServerMsg::Snapshot(_)));
    suggestions(&mut a, Duration::from_secs(10)).await;

    // Only answers (a subscriber of the requests' subjects would count as
    // a responder and hide a missing owner from every cluster on this NATS).
    let watcher = async_nats::connect(nats.as_str()).await.unwrap();
    let mut sub = watcher.subscribe("_INBOX.>").await.unwrap();
    watcher.flush().await.unwrap();
    let other = app.others[0].rest.ws_url();
    // Ben joins on the other node without asking: the owner sends none.
    let mut plain = Ws::connect(&other).await;
    plain.join_snapshot(&session, &ben.token).await;
    let carried = next_join_answer(&mut sub, &playlist, Duration::from_secs(5)).await;
    assert_eq!(carried, Some(false), "a join that did not ask");
    // Asking, he gets the latest at once, carried in the join's answer.
    let mut asking = Ws::connect(&other).await;
    asking
        .send(&msg::join_with_suggestions(&session, &ben.token, None))
        .await;
    assert!(matches!(asking.recv().await, ServerMsg::Snapshot(_)));
    let carried = next_join_answer(&mut sub, &playlist, Duration::from_secs(5)).await;
    assert_eq!(carried, Some(true), "a join that asked");
    suggestions(&mut asking, Duration::from_secs(5)).await;
    while let Some(m) = plain.try_recv().await {
        assert!(
            !matches!(m, ServerMsg::Suggestions { .. }),
            "a listener that did not ask got {m:?}"
        );
    }
    app.stop().await;
}
