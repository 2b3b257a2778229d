//! The owner's side of a session's requests: what other nodes send to
//! `….s.<id>.req` becomes the actor's commands, in the order it came (one
//! subscription, one forwarding loop: a connection's ops keep their order),
//! and each answer goes back to the asker's inbox.

use std::time::Instant;

use async_nats::{Subject, Subscriber};
use audotics_protocol::{self as protocol, UserId};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::listeners::{frame, Asks};
use super::parse::to_op;
use super::Command;
use crate::cluster::wire::{encode_json, Answer, JoinReply, OpReply, Request};
use crate::cluster::Cluster;
use crate::error::Error;

/// An empty answer: the owner stopped before answering (the asker tries
/// again, and finds or becomes the next owner).
pub const GONE: Bytes = Bytes::new();

/// Forward `sub`'s requests to the actor behind `actor` until either ends.
pub async fn forward(mut sub: Subscriber, actor: mpsc::WeakSender<Command>, cluster: Cluster) {
    while let Some(m) = sub.next().await {
        let Some(tx) = actor.upgrade() else {
            // The actor is gone: the asker tries again at once.
            if let Some(to) = m.reply {
                cluster.publish(to, GONE);
            }
            return;
        };
        let request = match Request::decode(&m.payload) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "dropping a request");
                continue;
            }
        };
        let reply_to = m.reply;
        let sent = match request {
            Request::Presence(report) => tx.send(Command::Presence(report)).await.is_ok(),
            Request::Ops { user, frames } => {
                let Some(to) = reply_to else { continue };
                cluster.metrics().forwarded_in.inc_by(frames.len() as u64);
                // Handed to the actor one after the other, before the next
                // request is read: the connection's order is kept.
                let mut answers = Vec::with_capacity(frames.len());
                let mut sent = true;
                for text in &frames {
                    match op_command(&user, text) {
                        Ok((cmd, rx)) => {
                            sent = tx.send(cmd).await.is_ok();
                            if !sent {
                                break;
                            }
                            answers.push(Err(rx));
                        }
                        Err(reply) => answers.push(Ok(reply)),
                    }
                }
                tokio::spawn(answer(cluster.clone(), to, async move {
                    let mut replies = Vec::with_capacity(answers.len());
                    for a in answers {
                        replies.push(match a {
                            Ok(refused) => refused,
                            Err(rx) => rx.await.ok()?,
                        });
                    }
                    (replies.len() == frames.len()).then(|| OpReply::encode_many(&replies))
                }));
                sent
            }
            Request::Join {
                user,
                since,
                watch,
                suggestions,
            } => {
                let Some(to) = reply_to else { continue };
                let (reply, rx) = oneshot::channel();
                let asks = Asks { suggestions, watch };
                let sent = tx
                    .send(Command::RemoteJoin {
                        user,
                        since,
                        asks,
                        reply,
                    })
                    .await
                    .is_ok();
                let limit = cluster.max_payload();
                tokio::spawn(answer(cluster.clone(), to, async move {
                    let reply = rx.await.ok()?;
                    let bytes = encode_json(&reply);
                    if bytes.len() <= limit {
                        return Some(bytes);
                    }
                    // Too large for NATS: the relay reads the snapshot itself.
                    let JoinReply::Opening(mut opening) = reply else {
                        return Some(bytes);
                    };
                    opening.frames.clear();
                    Some(encode_json(&JoinReply::Opening(opening)))
                }));
                sent
            }
            Request::Snapshot { viewer } => {
                let Some(to) = reply_to else { continue };
                let (reply, rx) = oneshot::channel();
                let viewer = UserId::from_stored(viewer);
                let sent = tx.send(Command::Snapshot { viewer, reply }).await.is_ok();
                tokio::spawn(answer(cluster.clone(), to, async move {
                    Some(match rx.await.ok()? {
                        Ok(s) => Answer::Snapshot(Box::new(s)).encode(),
                        Err(e) => answer_error(e).encode(),
                    })
                }));
                sent
            }
            Request::Suggestions => {
                let Some(to) = reply_to else { continue };
                let (reply, rx) = oneshot::channel();
                let sent = tx.send(Command::Suggestions { reply }).await.is_ok();
                tokio::spawn(answer(cluster.clone(), to, async move {
                    let (version, items) = rx.await.ok()?;
                    Some(Answer::Suggestions { version, items }.encode())
                }));
                sent
            }
            Request::End => {
                let Some(to) = reply_to else { continue };
                let (reply, rx) = oneshot::channel();
                let sent = tx.send(Command::End { reply }).await.is_ok();
                tokio::spawn(answer(cluster.clone(), to, async move {
                    Some(match rx.await.ok()? {
                        Ok(()) => Answer::Done.encode(),
                        Err(e) => answer_error(e).encode(),
                    })
                }));
                sent
            }
        };
        if !sent {
            return;
        }
    }
}

fn answer_error(e: Error) -> Answer {
    match e {
        Error::NotFound(_) => Answer::NotFound,
        _ => Answer::Unavailable,
    }
}

/// Publish what `answer` yields to `to`; [`GONE`] if it yields nothing
/// (the actor stopped without answering).
async fn answer(
    cluster: Cluster,
    to: Subject,
    answer: impl std::future::Future<Output = Option<Bytes>>,
) {
    let bytes = answer.await.unwrap_or(GONE);
    cluster.publish(to, bytes);
}

/// The actor command for a forwarded op frame, or the error to answer.
fn op_command(user: &str, text: &str) -> Result<(Command, oneshot::Receiver<OpReply>), OpReply> {
    let refuse = |req: Option<String>, e: Error| OpReply {
        mark: Default::default(),
        frame: frame(&e.to_frame(req)),
    };
    let msg = protocol::parse_client(text).map_err(|(req, e)| refuse(req, Error::from(e)))?;
    let req = protocol::msg_req(&msg).map(str::to_owned);
    let (req, op) = to_op(msg).map_err(|e| refuse(req, e))?;
    let (reply, rx) = oneshot::channel();
    let cmd = Command::Forwarded {
        user: UserId::from_stored(user.to_owned()),
        req,
        op,
        reply,
        sent: Instant::now(),
    };
    Ok((cmd, rx))
}

/// A local `unavailable` answer for `req` (no owner could be reached).
pub fn unavailable(req: &str) -> OpReply {
    OpReply {
        mark: Default::default(),
        frame: frame(&Error::Unavailable.to_frame(Some(req.to_owned()))),
    }
}
