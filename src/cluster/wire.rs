//! What nodes say to each other over NATS, and how it is encoded.
//!
//! Frames a listener will see travel as they are: an event or an op's answer
//! is one line of JSON metadata, a newline, then the frame's bytes, so a
//! relay hands the frame to its listeners without parsing or copying it.
//! Requests to an owner are small JSON documents.

use audotics_protocol::model::{Snapshot, User};
use axum::extract::ws::Utf8Bytes;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// Where in an owner's stream of events something stands: events carry
/// the owner's epoch and a sequence number that grows by one per event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    #[serde(rename = "e")]
    pub epoch: i64,
    #[serde(rename = "q")]
    pub seq: u64,
    /// The session's version when it was published: every update up to it
    /// was published before.
    #[serde(rename = "v")]
    pub version: i64,
}

/// A listener as its node numbers it (the hub's `ListenerId`); across
/// nodes a listener is (node, this).
pub type ListenerId = u64;

/// What the owner of a session publishes to every node with listeners.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A committed change: the `update` frame of version `mark.version`.
    Update(Utf8Bytes),
    /// A committed reaction (`interaction` frame; not versioned).
    Reaction(Utf8Bytes),
    /// A `presence` frame, for every listener but the ones listed (the
    /// joiners it announces learned their state from their snapshot).
    Presence {
        frame: Utf8Bytes,
        except: Vec<(String, ListenerId)>,
    },
    /// The session ended: this `ended` frame, then close 4010.
    Ended(Utf8Bytes),
    /// New `suggestions` for the room (relays keep the latest for joiners).
    Suggestions(Utf8Bytes),
    /// A member was removed: close their listeners with `code` (4003,
    /// 4011 or 4012).
    Kick { user: String, code: u16 },
    /// A node took the session over (at `mark.version`): report presence.
    Owner(String),
    /// Nothing new: the version the owner is at, so a relay that missed the
    /// last update notices.
    Tick,
}

/// An event with its place in the owner's stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Stamped {
    pub mark: Mark,
    pub event: Event,
}

#[derive(Serialize, Deserialize)]
struct EventMeta {
    k: EventKind,
    #[serde(flatten)]
    mark: Mark,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    x: Vec<(String, ListenerId)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    w: Option<String>,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
enum EventKind {
    #[serde(rename = "u")]
    Update,
    #[serde(rename = "r")]
    Reaction,
    #[serde(rename = "p")]
    Presence,
    #[serde(rename = "x")]
    Ended,
    #[serde(rename = "k")]
    Kick,
    #[serde(rename = "o")]
    Owner,
    #[serde(rename = "t")]
    Tick,
    #[serde(rename = "s")]
    Suggestions,
}

/// Why a message from another node could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable cluster message: {0}")]
pub struct WireError(String);

fn bad(e: impl std::fmt::Display) -> WireError {
    WireError(e.to_string())
}

/// `meta` as one JSON line, then `frame`.
fn with_frame(meta: &impl Serialize, frame: Option<&Utf8Bytes>) -> Bytes {
    let meta = serde_json::to_vec(meta).expect("metadata serializes");
    let len = meta.len() + 1 + frame.map_or(0, |f| f.len());
    let mut out = BytesMut::with_capacity(len);
    out.put_slice(&meta);
    out.put_u8(b'\n');
    if let Some(f) = frame {
        out.put_slice(f.as_bytes());
    }
    out.freeze()
}

/// The metadata line and the frame after it (without copying the frame).
fn split_frame<T: for<'de> Deserialize<'de>>(payload: Bytes) -> Result<(T, Utf8Bytes), WireError> {
    let nl = payload
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| bad("no metadata line"))?;
    let meta = serde_json::from_slice(&payload[..nl]).map_err(bad)?;
    let frame = Utf8Bytes::try_from(payload.slice(nl + 1..)).map_err(bad)?;
    Ok((meta, frame))
}

impl Stamped {
    pub fn encode(&self) -> Bytes {
        let (k, frame, x, w) = match &self.event {
            Event::Update(f) => (EventKind::Update, Some(f), Vec::new(), None),
            Event::Reaction(f) => (EventKind::Reaction, Some(f), Vec::new(), None),
            Event::Presence { frame, except } => {
                (EventKind::Presence, Some(frame), except.clone(), None)
            }
            Event::Ended(f) => (EventKind::Ended, Some(f), Vec::new(), None),
            Event::Suggestions(f) => (EventKind::Suggestions, Some(f), Vec::new(), None),
            Event::Kick { user, code } => (
                EventKind::Kick,
                None,
                vec![(code.to_string(), 0)],
                Some(user.clone()),
            ),
            Event::Owner(node) => (EventKind::Owner, None, Vec::new(), Some(node.clone())),
            Event::Tick => (EventKind::Tick, None, Vec::new(), None),
        };
        let meta = EventMeta {
            k,
            mark: self.mark,
            x,
            w,
        };
        with_frame(&meta, frame)
    }

    pub fn decode(payload: Bytes) -> Result<Stamped, WireError> {
        let (meta, frame): (EventMeta, Utf8Bytes) = split_frame(payload)?;
        let who = || meta.w.clone().ok_or_else(|| bad("missing name"));
        let event = match meta.k {
            EventKind::Update => Event::Update(frame),
            EventKind::Reaction => Event::Reaction(frame),
            EventKind::Presence => Event::Presence {
                frame,
                except: meta.x,
            },
            EventKind::Ended => Event::Ended(frame),
            EventKind::Suggestions => Event::Suggestions(frame),
            EventKind::Kick => Event::Kick {
                user: who()?,
                code: meta
                    .x
                    .first()
                    .and_then(|(c, _)| c.parse().ok())
                    .unwrap_or(4003),
            },
            EventKind::Owner => Event::Owner(who()?),
            EventKind::Tick => Event::Tick,
        };
        Ok(Stamped {
            mark: meta.mark,
            event,
        })
    }
}

/// The owner's answer to an op: the exact `ack` or `error` frame it would
/// send a local listener, and where its stream stood when it answered (the
/// relay delivers the answer only after the events before it).
#[derive(Clone, Debug, PartialEq)]
pub struct OpReply {
    pub mark: Mark,
    pub frame: Utf8Bytes,
}

impl OpReply {
    pub fn encode(&self) -> Bytes {
        with_frame(&self.mark, Some(&self.frame))
    }

    pub fn decode(payload: Bytes) -> Result<OpReply, WireError> {
        let (mark, frame) = split_frame(payload)?;
        Ok(OpReply { mark, frame })
    }

    /// The answers to a [`Request::Ops`], in its order: each one's length
    /// (4 bytes, big-endian), then the answer.
    pub fn encode_many(replies: &[OpReply]) -> Bytes {
        let mut out = BytesMut::new();
        for r in replies {
            let one = r.encode();
            out.put_u32(one.len() as u32);
            out.put_slice(&one);
        }
        out.freeze()
    }

    /// The `expected` answers in `payload` (any other count is an error).
    pub fn decode_many(mut payload: Bytes, expected: usize) -> Result<Vec<OpReply>, WireError> {
        let mut replies = Vec::with_capacity(expected);
        while !payload.is_empty() {
            if payload.len() < 4 {
                return Err(bad("a truncated answer length"));
            }
            let len = payload.get_u32() as usize;
            if payload.len() < len {
                return Err(bad("a truncated answer"));
            }
            replies.push(OpReply::decode(payload.split_to(len))?);
        }
        if replies.len() != expected {
            return Err(bad(format!("{} answers for {expected} ops", replies.len())));
        }
        Ok(replies)
    }
}

/// What a node asks of a session's owner.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Request {
    /// One connection's ops, in the order it sent them: the client's
    /// frames as they came (the owner parses them with the same rules);
    /// answered by [`OpReply::encode_many`] in the same order.
    Ops { user: String, frames: Vec<String> },
    /// A listener joins: membership, and its first frames.
    Join {
        user: User,
        since: Option<i64>,
        /// A screen that watches (not made a member).
        #[serde(default)]
        watch: bool,
        /// It asked for `suggestions` frames: only then does the opening
        /// carry the latest one. (A node that predates the field always
        /// got it, so absent means asked.)
        #[serde(default = "asked")]
        suggestions: bool,
    },
    /// `GET /v1/sessions/{id}` for `viewer`.
    Snapshot { viewer: String },
    /// `GET /v1/sessions/{id}/suggestions`.
    Suggestions,
    /// End the session.
    End,
    /// A node's listeners changed (no reply).
    Presence(Report),
}

fn asked() -> bool {
    true
}

impl Request {
    pub fn encode(&self) -> Bytes {
        serde_json::to_vec(self).expect("requests serialize").into()
    }

    pub fn decode(payload: &[u8]) -> Result<Request, WireError> {
        serde_json::from_slice(payload).map_err(bad)
    }
}

/// One node's listeners of a session, by user: every user when `full`,
/// else the users whose count changed since its last report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub node: String,
    pub full: bool,
    /// (user id, name, listeners on this node now).
    pub users: Vec<(String, String, usize)>,
    /// Listeners that joined since the last report (not told of their own
    /// arrival).
    pub joined: Vec<ListenerId>,
}

/// A joiner's first frames, as the owner made them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Opening {
    /// The version the frames bring the joiner to.
    pub version: i64,
    pub playlist_id: String,
    pub mark: Mark,
    /// `snapshot`, or `resumed` and the updates missed. Empty: too large to
    /// carry, read the snapshot from Postgres.
    pub frames: Vec<String>,
    /// The latest `suggestions` frame, for a joiner that asked for them.
    #[serde(default)]
    pub suggestions: Option<String>,
}

/// The owner's answer to a join.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum JoinReply {
    Opening(Opening),
    NotFound,
    Ended,
    Banned,
    Unavailable,
}

/// The owner's answer to a snapshot or an end.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Snapshot(Box<Snapshot>),
    Suggestions {
        version: i64,
        items: Vec<audotics_protocol::party::Suggested>,
    },
    Done,
    NotFound,
    Unavailable,
}

impl Answer {
    pub fn encode(&self) -> Bytes {
        serde_json::to_vec(self).expect("answers serialize").into()
    }
}

pub fn encode_json(v: &impl Serialize) -> Bytes {
    serde_json::to_vec(v).expect("serializes").into()
}

pub fn decode_json<T: for<'de> Deserialize<'de>>(payload: &[u8]) -> Result<T, WireError> {
    serde_json::from_slice(payload).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark() -> Mark {
        Mark {
            epoch: 3,
            seq: 17,
            version: 42,
        }
    }

    #[test]
    fn every_event_survives_the_wire() {
        let events = [
            Event::Update(r#"{"type":"update","version":42}"#.into()),
            Event::Reaction(r#"{"type":"interaction"}"#.into()),
            Event::Presence {
                frame: r#"{"type":"presence"}"#.into(),
                except: vec![("n1".into(), 7)],
            },
            Event::Ended(r#"{"type":"ended"}"#.into()),
            Event::Suggestions(r#"{"type":"suggestions"}"#.into()),
            Event::Kick {
                user: "u1".into(),
                code: 4012,
            },
            Event::Owner("n2".into()),
            Event::Tick,
        ];
        for event in events {
            let s = Stamped {
                mark: mark(),
                event,
            };
            assert_eq!(Stamped::decode(s.encode()).unwrap(), s);
        }
    }

    #[test]
    fn a_connections_answers_keep_their_order_on_the_wire() {
        let replies: Vec<OpReply> = (0..3)
            .map(|i| OpReply {
                mark: Mark {
                    version: i,
                    ..mark()
                },
                frame: format!("{{\"type\":\"ack\",\"req\":\"r{i}\"}}\n").into(),
            })
            .collect();
        let bytes = OpReply::encode_many(&replies);
        assert_eq!(OpReply::decode_many(bytes.clone(), 3).unwrap(), replies);
        assert!(OpReply::decode_many(bytes.clone(), 2).is_err());
        assert!(OpReply::decode_many(bytes.slice(..bytes.len() - 1), 3).is_err());
        assert!(OpReply::decode_many(Bytes::new(), 0).unwrap().is_empty());
    }

    #[test]
    fn a_frame_with_newlines_is_carried_whole() {
        let r = OpReply {
            mark: mark(),
            frame: "{\"a\":\n1}\n".into(),
        };
        assert_eq!(OpReply::decode(r.encode()).unwrap(), r);
    }

    #[test]
    fn a_join_from_a_node_that_predates_asking_gets_suggestions() {
        let join = |extra: &str| {
            let json = format!(
                r#"{{"k":"join","user":{{"id":"u","email":"u@x","name":"U","avatar":null,
                "spotifyId":null,"createdAt":"2026-01-01T00:00:00Z"}},"since":null{extra}}}"#
            );
            match Request::decode(json.as_bytes()).unwrap() {
                Request::Join {
                    suggestions, watch, ..
                } => (suggestions, watch),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(join(""), (true, false));
        assert_eq!(join(r#","suggestions":false,"watch":true"#), (false, true));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for junk in [
            &b""[..],
            b"{}",
            b"no newline",
            b"{\"k\":\"u\"}\n",
            b"\xff\n\xff",
        ] {
            assert!(Stamped::decode(Bytes::copy_from_slice(junk)).is_err());
            assert!(OpReply::decode(Bytes::copy_from_slice(junk)).is_err());
            assert!(Request::decode(junk).is_err());
        }
    }
}
