//! A client's op frame, parsed into an [`Op`]: the same rules wherever the
//! frame arrives (a connection, or another node forwarding it).

use audotics_protocol::rules;
use audotics_protocol::{self as protocol, ClientMsg, EntryId, IdError, Req, TrackId};

use super::state::{Op, TrackRef};
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
