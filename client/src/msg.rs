//! `ClientMsg` values from plain arguments, so a caller can hold a frame
//! (to re-send it, pad it, list it in a table) without writing its JSON.

use audotics_protocol::model::Role;
use audotics_protocol::model::TrackBody;
use audotics_protocol::party::OrderMode;
use audotics_protocol::{
    Add, ClientMsg, Interaction, Join, Kick, Leave, Next, Pause, Pin, Play, Remove, Reorder,
    RoleChange, Seek, Settings, SkipVote, Unban, Vote,
};

/// `join`; `since: None` asks for a fresh snapshot.
pub fn join(session: &str, token: &str, since: Option<i64>) -> ClientMsg {
    ClientMsg::Join(Join {
        session_id: session.to_owned(),
        token: token.to_owned(),
        since,
        suggestions: false,
        watch: false,
    })
}

/// `join` asking for `suggestions` frames too.
pub fn join_with_suggestions(session: &str, token: &str, since: Option<i64>) -> ClientMsg {
    ClientMsg::Join(Join {
        session_id: session.to_owned(),
        token: token.to_owned(),
        since,
        suggestions: true,
        watch: false,
    })
}

/// `join` as a screen that watches (not a member, not in presence).
pub fn watch(session: &str, token: &str) -> ClientMsg {
    ClientMsg::Join(Join {
        session_id: session.to_owned(),
        token: token.to_owned(),
        since: None,
        suggestions: false,
        watch: true,
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

/// `play`: `entry` now, or resume / start the queue.
pub fn play(req: &str, entry: Option<&str>) -> ClientMsg {
    ClientMsg::Play(Play {
        req: req.to_owned(),
        entry_id: entry.map(str::to_owned),
    })
}

pub fn pause(req: &str) -> ClientMsg {
    ClientMsg::Pause(Pause {
        req: req.to_owned(),
    })
}

pub fn seek(req: &str, position_ms: u32) -> ClientMsg {
    ClientMsg::Seek(Seek {
        req: req.to_owned(),
        position_ms,
    })
}

pub fn next(req: &str) -> ClientMsg {
    ClientMsg::Next(Next {
        req: req.to_owned(),
    })
}

pub fn vote(req: &str, entry: &str, up: bool) -> ClientMsg {
    ClientMsg::Vote(Vote {
        req: req.to_owned(),
        entry_id: entry.to_owned(),
        up,
    })
}

pub fn skip_vote(req: &str, up: bool) -> ClientMsg {
    ClientMsg::SkipVote(SkipVote {
        req: req.to_owned(),
        up,
    })
}

pub fn pin(req: &str, entry: &str) -> ClientMsg {
    ClientMsg::Pin(Pin {
        req: req.to_owned(),
        entry_id: entry.to_owned(),
    })
}

/// `settings` with nothing set: fill in what to change.
pub fn settings(req: &str) -> Settings {
    Settings {
        req: req.to_owned(),
        order: None,
        guests_add: None,
        guests_reorder: None,
        guests_skip: None,
        guest_queue_cap: None,
        skip_threshold: None,
    }
}

/// `settings` setting only the order mode.
pub fn order(req: &str, order: OrderMode) -> ClientMsg {
    ClientMsg::Settings(Settings {
        order: Some(order),
        ..settings(req)
    })
}

pub fn role(req: &str, user: &str, role: Role) -> ClientMsg {
    ClientMsg::Role(RoleChange {
        req: req.to_owned(),
        user_id: user.to_owned(),
        role,
    })
}

pub fn kick(req: &str, user: &str, ban: bool) -> ClientMsg {
    ClientMsg::Kick(Kick {
        req: req.to_owned(),
        user_id: user.to_owned(),
        ban,
    })
}

pub fn unban(req: &str, user: &str) -> ClientMsg {
    ClientMsg::Unban(Unban {
        req: req.to_owned(),
        user_id: user.to_owned(),
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
            duration_ms: None,
            cover_url: None,
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
            play("r8", None),
            play("r9", Some("e")),
            pause("r10"),
            seek("r11", 1500),
            next("r12"),
            vote("r13", "e", true),
            skip_vote("r14", false),
            pin("r15", "e"),
            order("r16", OrderMode::Fair),
            ClientMsg::Settings(Settings {
                guest_queue_cap: Some(0),
                skip_threshold: Some(0.25),
                ..settings("r17")
            }),
            role("r18", "u", Role::Cohost),
            kick("r19", "u", true),
            unban("r20", "u"),
            leave(),
        ] {
            assert_eq!(audotics_protocol::parse_client(&text(&m)), Ok(m));
        }
    }
}
