//! Joining a session: membership, the first frames a listener gets (a
//! `snapshot`, or `resumed` and exactly the updates it missed), and the
//! memory of recent updates that serves most resumes without the database.

use std::collections::VecDeque;

use audotics_protocol::model::User;
use audotics_protocol::{ServerMsg, UserId};
use axum::extract::ws::Utf8Bytes;

use super::listeners::{frame, Asks, ListenerId};
use super::{JoinRefusal, SessionActor};
use crate::cluster::wire::{JoinReply, Opening};
use crate::db::log;
use crate::db::sessions::{self, MemberRow};
use crate::hub::outbox::Outbox;

/// Updates kept in memory to serve `since` resumes without the database.
const RECENT_UPDATES: usize = 1024;
/// A resume missing more than this many updates gets a snapshot instead.
const MAX_REPLAY: i64 = 5000;

/// The last [`RECENT_UPDATES`] update frames, oldest first.
#[derive(Default)]
pub struct Recent {
    frames: VecDeque<(i64, Utf8Bytes)>,
}

impl Recent {
    pub fn push(&mut self, version: i64, frame: Utf8Bytes) {
        self.frames.push_back((version, frame));
        if self.frames.len() > RECENT_UPDATES {
            self.frames.pop_front();
        }
    }

    /// The frames after `since`, if memory reaches back that far.
    pub fn after(&self, since: i64) -> Option<Vec<Utf8Bytes>> {
        let (first, _) = self.frames.front()?;
        (*first <= since + 1).then(|| {
            self.frames
                .iter()
                .filter(|(v, _)| *v > since)
                .map(|(_, f)| f.clone())
                .collect()
        })
    }
}

impl SessionActor {
    pub(super) async fn join(
        &mut self,
        user: User,
        since: Option<i64>,
        asks: Asks,
        outbox: Outbox,
    ) -> Result<ListenerId, JoinRefusal> {
        let name = user.name.clone();
        let user_id = self.admit(user, asks.watch).await?;
        let Some(listeners) = self.audience.local() else {
            return Err(JoinRefusal::Unavailable);
        };
        let id = listeners.add(user_id.clone(), name, outbox.clone(), asks);
        let mut frames = self.opening(&user_id, since).await;
        // Then what the room would like next, as the others last saw it.
        if asks.suggestions {
            frames.extend(self.upnext.frame());
        }
        let Some(listeners) = self.audience.local() else {
            return Err(JoinRefusal::Unavailable);
        };
        for f in frames {
            if outbox.push_opening(f).is_err() {
                listeners.remove(id);
                return Ok(id);
            }
        }
        listeners.announce(id);
        Ok(id)
    }

    /// Cluster: a listener joins on some node. Its relay registers it
    /// with these first frames.
    pub(super) async fn remote_join(
        &mut self,
        user: User,
        since: Option<i64>,
        asks: Asks,
    ) -> JoinReply {
        let user_id = match self.admit(user, asks.watch).await {
            Ok(id) => id,
            Err(JoinRefusal::NotFound) => return JoinReply::NotFound,
            Err(JoinRefusal::Ended) => return JoinReply::Ended,
            Err(JoinRefusal::Banned) => return JoinReply::Banned,
            Err(JoinRefusal::Unavailable) => return JoinReply::Unavailable,
        };
        let frames = self.opening(&user_id, since).await;
        let Some(owned) = self.audience.owned() else {
            return JoinReply::Unavailable;
        };
        JoinReply::Opening(Opening {
            version: self.state.version(),
            playlist_id: self.state.playlist.id.clone(),
            mark: owned.mark(),
            frames: frames.iter().map(|f| f.as_str().to_owned()).collect(),
            // Only for a joiner that asked: the relay would drop it.
            suggestions: asks
                .suggestions
                .then(|| self.upnext.frame())
                .flatten()
                .map(|f| f.as_str().to_owned()),
        })
    }

    /// A joiner of an active session, made a member if it is not one
    /// (unless it only watches).
    async fn admit(&mut self, user: User, watch: bool) -> Result<UserId, JoinRefusal> {
        if !self.state.session.active {
            return Err(JoinRefusal::Ended);
        }
        let user_id = UserId::from_stored(user.id);
        if self.state.is_banned(&user_id) {
            return Err(JoinRefusal::Banned);
        }
        if !watch && !self.state.is_member(&user_id) {
            sessions::add_member(&self.shared.db, self.id.as_str(), user_id.as_str())
                .await
                .map_err(|_| JoinRefusal::Unavailable)?;
            self.state.add_member(MemberRow {
                user_id: user_id.clone(),
                name: user.name.clone(),
                avatar: user.avatar,
            });
        }
        Ok(user_id)
    }

    /// A joiner's first frames: `resumed` and what it missed, or a snapshot.
    async fn opening(&self, user: &UserId, since: Option<i64>) -> Vec<Utf8Bytes> {
        match self.resume(since).await {
            Some(frames) => frames,
            None => vec![frame(&ServerMsg::Snapshot(self.snapshot(user, true)))],
        }
    }

    /// `resumed` and the missed updates, when `since` can be served by
    /// replay; `None`: send a snapshot.
    async fn resume(&self, since: Option<i64>) -> Option<Vec<Utf8Bytes>> {
        let version = self.state.version();
        let since = since?;
        if since > version || version - since > MAX_REPLAY {
            return None;
        }
        let mut frames = vec![frame(&ServerMsg::Resumed { version })];
        if since < version {
            let updates = self.replay(since).await?;
            if !self.replay_fits(&updates) {
                return None;
            }
            frames.extend(updates);
        }
        Some(frames)
    }

    /// Whether a replay can be queued to a new listener and still leave it
    /// room for live updates: at most half its outbox (frames and bytes).
    /// A bigger resume would overflow the outbox at once (4008, and the
    /// client's retry with the same `since` would too): it gets a snapshot.
    fn replay_fits(&self, updates: &[Utf8Bytes]) -> bool {
        let bytes: usize = updates.iter().map(|f| f.len()).sum();
        // (`<`: the `resumed` frame goes first.)
        updates.len() < self.shared.config.outbound_frames / 2
            && bytes <= self.shared.config.outbound_bytes / 2
    }

    /// The `update` frames after `since`, from memory or the log.
    async fn replay(&self, since: i64) -> Option<Vec<Utf8Bytes>> {
        if let Some(frames) = self.recent.after(since) {
            return Some(frames);
        }
        let expected = self.state.version() - since;
        let (session, playlist) = (self.id.as_str(), &self.state.playlist.id);
        let records = log::after(&self.shared.db, session, playlist, since, expected)
            .await
            .ok()?;
        if records.len() as i64 != expected {
            tracing::warn!(since, "log replay incomplete; sending a snapshot");
            return None;
        }
        Some(records.iter().map(|r| frame(&r.update())).collect())
    }
}
