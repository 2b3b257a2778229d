//! `ClientMsg` values from plain arguments, so a caller can hold a frame
//! (to re-send it, pad it, list it in a table) without writing its JSON.

use audotics_protocol::model::TrackBody;
use audotics_protocol::{Add, ClientMsg, Interaction, Join, Leave, Remove, Reorder};

/// `join`; `since: None` asks for a fresh snapshot.
pub fn join(session: &str, token: &str, since: Option<i64>) -> ClientMsg {
    ClientMsg::Join(Join {
        session_id: session.to_owned(),
        token: token.to_owned(),
        since,
    })
}

/// `add` of an existing track by its id; `index: None` appends.
pub fn add(req: &str, track_id: &str, index: Option<usize>) -> ClientMsg {
    ClientMsg::Add(Add {
        req: req.to_owned(),
        track_id: Some(track_id.to_owned()),
        track: None,
        index,
    })
}

/// `add` by metadata (the track is upserted by `spotifyId`).
pub fn add_track(req: &str, track: TrackBody, index: Option<usize>) -> ClientMsg {
    ClientMsg::Add(Add {
        req: req.to_owned(),
        track_id: None,
        track: Some(track),
        index,
    })
}

pub fn remove(req: &str, entry: &str) -> ClientMsg {
    ClientMsg::Remove(Remove {
        req: req.to_owned(),
        entry_id: entry.to_owned(),
    })
}

pub fn reorder(req: &str, entry: &str, to_index: usize, base_version: Option<i64>) -> ClientMsg {
    ClientMsg::Reorder(Reorder {
        req: req.to_owned(),
        entry_id: entry.to_owned(),
        to_index,
        base_version,
    })
}

pub fn interaction(req: &str, track_id: &str, kind: &str) -> ClientMsg {
    ClientMsg::Interaction(Interaction {
        req: req.to_owned(),
        track_id: track_id.to_owned(),
        kind: kind.to_owned(),
    })
}

pub fn leave() -> ClientMsg {
    ClientMsg::Leave(Leave {})
}

/// The frame's text. Serializing a protocol type cannot fail.
pub fn text(msg: &ClientMsg) -> String {
    serde_json::to_string(msg).expect("client messages always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What this module builds is what the hub's parser reads back.
    #[test]
    fn every_message_round_trips_through_the_hub_parser() {
        let track = TrackBody {
            spotify_id: "sp1".into(),
            name: "Song".into(),
            artists: vec!["Artist".into()],
            album: "Album".into(),
            popularity: None,
        };
        for m in [
            join("s", "t", None),
            join("s", "t", Some(3)),
            add("r1", "t1", None),
            add("r2", "t1", Some(0)),
            add_track("r3", track, Some(1)),
            remove("r4", "e"),
            reorder("r5", "e", 2, Some(7)),
            reorder("r6", "e", 0, None),
            interaction("r7", "t1", "like"),
            leave(),
        ] {
            assert_eq!(audotics_protocol::parse_client(&text(&m)), Ok(m));
        }
    }
}
