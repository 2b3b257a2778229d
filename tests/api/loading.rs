//! Sessions loaded together (a node taking over many at once, see
//! `hub::session::load`) come back exactly as each loaded alone: one query
//! per table for all of them must not mix up their rows.

use std::collections::HashSet;

use audotics_hub::error::Error;
use audotics_hub::hub::session::load::{load_state, Loader};
use audotics_hub::hub::snapshot::assemble;
use audotics_protocol::{Req, ServerMsg, UserId};

use crate::helpers::*;

#[tokio::test]
async fn sessions_loaded_together_each_come_back_as_loaded_alone() {
    let p = party().await;
    let app = &p.app;
    // Three sessions that differ in queue, members and reactions; one empty.
    let (second, _) = app.create_session(&p.guest, "Saturday").await;
    let (empty, _) = app.create_session(&p.host, "Sunday").await;
    let (mut host, _) = app.join(&p.host, &p.session).await;
    host.add_acked("a1", &p.tracks[0]).await;
    host.add_acked("a2", &p.tracks[1]).await;
    host.interaction("a3", &p.tracks[0], "like").await;
    host.recv_until(|m| matches!(m, ServerMsg::Ack { .. }))
        .await;
    let (mut guest, _) = app.join(&p.guest, &second).await;
    guest.add_acked("b1", &p.tracks[2]).await;
    let (mut joiner, _) = app.join(&p.host, &second).await;
    drop((host, guest, joiner.leave().await));

    let ids = [p.session.clone(), second.clone(), empty.clone()];
    let mut alone = Vec::new();
    for id in &ids {
        alone.push(load_state(&app.db, id, 100, false).await.unwrap());
    }
    let loader = Loader::new(app.db.clone(), 100);
    let asked = [
        p.session.as_str(),
        second.as_str(),
        empty.as_str(),
        "no-such-session",
        p.session.as_str(),
    ];
    let together = futures::future::join_all(asked.iter().map(|id| loader.load(id))).await;

    let viewer = UserId::from_stored(p.host.id.clone());
    let online = HashSet::new();
    for (i, (state, commits, _)) in alone.iter().enumerate() {
        let got = together[i].as_ref().expect("loaded");
        assert_eq!(
            serde_json::to_value(assemble(&got.state, &online, &viewer)).unwrap(),
            serde_json::to_value(assemble(state, &online, &viewer)).unwrap(),
            "{}: the same state as loaded alone",
            ids[i]
        );
        assert_eq!(got.commits, *commits);
    }
    let first = together[0].as_ref().unwrap();
    assert_eq!(first.state.queue().len(), 2);
    assert_eq!(together[1].as_ref().unwrap().state.members().len(), 2);
    assert_eq!(
        first
            .state
            .answered(&viewer, &Req::from_stored("a2".into())),
        alone[0].0.answered(&viewer, &Req::from_stored("a2".into())),
    );
    assert!(first
        .state
        .answered(&viewer, &Req::from_stored("a3".into()))
        .is_some());
    assert_eq!(first.reactions.len(), 1, "the host's like, for up next");
    assert!(together[1].as_ref().unwrap().reactions.is_empty());
    assert!(matches!(together[3], Err(Error::NotFound(_))));
    // The same session twice: two loads, two epochs (each actor fenced).
    let again = together[4].as_ref().expect("loaded");
    assert_ne!(again.epoch, first.epoch);
    assert_eq!(
        serde_json::to_value(assemble(&again.state, &online, &viewer)).unwrap(),
        serde_json::to_value(assemble(&first.state, &online, &viewer)).unwrap(),
    );
}
