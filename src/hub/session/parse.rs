//! A client's op frame, parsed into an [`Op`]: the same rules wherever the
//! frame arrives (a connection, or another node forwarding it).

use audotics_protocol::rules;
use audotics_protocol::{self as protocol, ClientMsg, EntryId, IdError, Req, TrackId, UserId};

use super::state::{Op, SettingsChange, TrackRef};
use crate::error::Error;

/// Check an op frame's fields and parse its ids: what reaches the actor is
/// an `Op` whose every id is well formed. An id that cannot name anything is
/// `not_found` (the protocol's decided answer); one with a control character
/// is `invalid` naming the field, so nothing Postgres would refuse travels on.
pub fn to_op(msg: ClientMsg) -> Result<(Req, Op), Error> {
    let (req, op) = match msg {
        ClientMsg::Add(protocol::Add {
            req,
            track_id: id,
            track,
            index,
        }) => {
            let track = match (id, track) {
                (Some(_), Some(_)) => {
                    return Err(Error::invalid(
                        "track",
                        "give either trackId or track, not both",
                    ))
                }
                (None, None) => return Err(Error::invalid("trackId", "give trackId or track")),
                (Some(id), None) => TrackRef::Id(track_id(&id)?),
                (None, Some(t)) => TrackRef::Meta(t.validate()?),
            };
            (req, Op::Add { track, index })
        }
        ClientMsg::Remove(protocol::Remove { req, entry_id }) => {
            let entry = EntryId::parse(&entry_id).map_err(|_| Error::NotFound("entry"))?;
            (req, Op::Remove { entry })
        }
        ClientMsg::Reorder(protocol::Reorder {
            req,
            entry_id,
            to_index,
            base_version,
        }) => {
            let entry = EntryId::parse(&entry_id).map_err(|_| Error::NotFound("entry"))?;
            let op = Op::Reorder {
                entry,
                to_index,
                base_version,
            };
            (req, op)
        }
        ClientMsg::Interaction(protocol::Interaction {
            req,
            track_id: id,
            kind,
        }) => {
            let op = Op::Interaction {
                track: track_id(&id)?,
                kind: rules::kind(&kind)?,
            };
            (req, op)
        }
        ClientMsg::Play(protocol::Play { req, entry_id }) => {
            let entry = entry_id.as_deref().map(entry).transpose()?;
            (req, Op::Play { entry })
        }
        ClientMsg::Pause(protocol::Pause { req }) => (req, Op::Pause),
        ClientMsg::Seek(protocol::Seek { req, position_ms }) => (
            req,
            Op::Seek {
                position_ms: i64::from(position_ms),
            },
        ),
        ClientMsg::Next(protocol::Next { req }) => (req, Op::Next),
        ClientMsg::Vote(protocol::Vote { req, entry_id, up }) => {
            let entry = entry(&entry_id)?;
            (req, Op::Vote { entry, up })
        }
        ClientMsg::SkipVote(protocol::SkipVote { req, up }) => (req, Op::SkipVote { up }),
        ClientMsg::Pin(protocol::Pin { req, entry_id }) => {
            let entry = entry(&entry_id)?;
            (req, Op::Pin { entry })
        }
        ClientMsg::Settings(s) => {
            let skip_threshold = s
                .skip_threshold
                .map(|t| rules::share("skipThreshold", t))
                .transpose()?;
            let change = SettingsChange {
                order: s.order,
                guests_add: s.guests_add,
                guests_reorder: s.guests_reorder,
                guests_skip: s.guests_skip,
                guest_queue_cap: s.guest_queue_cap.map(|c| (c > 0).then_some(c)),
                skip_threshold,
            };
            (s.req, Op::Settings(change))
        }
        ClientMsg::Role(protocol::RoleChange { req, user_id, role }) => {
            let user = user_id_of(&user_id)?;
            (req, Op::Role { user, role })
        }
        ClientMsg::Kick(protocol::Kick { req, user_id, ban }) => {
            let user = user_id_of(&user_id)?;
            (req, Op::Kick { user, ban })
        }
        ClientMsg::Unban(protocol::Unban { req, user_id }) => {
            let user = user_id_of(&user_id)?;
            (req, Op::Unban { user })
        }
        ClientMsg::Join(_) | ClientMsg::Leave(_) | ClientMsg::Ping(_) => {
            unreachable!("join, leave and ping are handled by the connection")
        }
    };
    // `parse_client` already checked the req against the same rule.
    Ok((Req::parse(&req)?, op))
}

/// A `trackId` from a frame.
fn track_id(id: &str) -> Result<TrackId, Error> {
    TrackId::parse(id).map_err(|e| match e {
        IdError::ControlCharacter => Error::invalid("trackId", e.to_string()),
        _ => Error::NotFound("track"),
    })
}

/// An `entryId`: not a UUID names no entry.
fn entry(id: &str) -> Result<EntryId, Error> {
    EntryId::parse(id).map_err(|_| Error::NotFound("entry"))
}

/// A `userId` of a member.
fn user_id_of(id: &str) -> Result<UserId, Error> {
    UserId::parse(id).map_err(|e| match e {
        IdError::ControlCharacter => Error::invalid("userId", e.to_string()),
        _ => Error::NotFound("member"),
    })
}
