//! Loading sessions for their actors, many at once. Each load reads about
//! ten tables; a node taking over the sessions of a dead one (hundreds at
//! once) or a hub restarted under its reconnecting clients would otherwise
//! run ten queries per session through one pool, and each session's first
//! ack would wait for all of them. The [`Loader`] sends the loads asked
//! while one batch is out together in the next: ten queries per batch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::PgPool;
use tokio::sync::oneshot;

use super::party;
use super::state::{Item, SessionState};
use super::upnext;
use crate::clock::now_ms;
use crate::db::party::StoredReaction;
use crate::db::{log, sessions};
use crate::error::{Error, Result};
use crate::hub::queue::{Entry, Position, Queue};
use audotics_protocol::EntryId;

/// Sessions loaded in one batch at most.
const BATCH: usize = 256;

/// A session as its actor starts from.
pub struct Loaded {
    pub state: SessionState,
    /// Its group commit counter.
    pub commits: i64,
    /// The ownership epoch it was loaded under.
    pub epoch: i64,
    /// Its last stored reactions, oldest first (for "up next"; loaded for
    /// an actor only, see [`load_state`]'s `take_over`).
    pub reactions: Vec<StoredReaction>,
}

/// Loads for actors about to serve their sessions (each bumps the
/// session's epoch, see `sessions::take_over`), batched.
pub struct Loader {
    db: PgPool,
    queue_cap: usize,
    /// Loads asked and not yet sent.
    asked: Mutex<Vec<(String, oneshot::Sender<Result<Loaded>>)>>,
    /// Held while a batch is out.
    busy: tokio::sync::Mutex<()>,
}

impl Loader {
    pub fn new(db: PgPool, queue_cap: usize) -> Arc<Loader> {
        Arc::new(Loader {
            db,
            queue_cap,
            asked: Mutex::new(Vec::new()),
            busy: tokio::sync::Mutex::new(()),
        })
    }

    /// Load session `id` to serve it.
    pub async fn load(self: &Arc<Self>, id: &str) -> Result<Loaded> {
        let (tx, rx) = oneshot::channel();
        self.asked
            .lock()
            .expect("not poisoned")
            .push((id.to_owned(), tx));
        // On a task of its own: an actor that stops while loading cancels
        // no query answering others.
        let me = self.clone();
        tokio::spawn(async move {
            let _busy = me.busy.lock().await;
            loop {
                let batch = me.next_batch();
                if batch.is_empty() {
                    return;
                }
                me.send(batch).await;
            }
        });
        rx.await
            .unwrap_or_else(|_| Err(Error::Internal(anyhow::anyhow!("session load dropped"))))
    }

    /// The next loads to send: distinct sessions (one epoch bump each), at
    /// most [`BATCH`]; the rest stay asked.
    fn next_batch(&self) -> Vec<(String, oneshot::Sender<Result<Loaded>>)> {
        let mut asked = self.asked.lock().expect("not poisoned");
        let mut batch: Vec<(String, oneshot::Sender<Result<Loaded>>)> = Vec::new();
        let mut rest = Vec::new();
        for (id, tx) in asked.drain(..) {
            if batch.len() < BATCH && !batch.iter().any(|(b, _)| *b == id) {
                batch.push((id, tx));
            } else {
                rest.push((id, tx));
            }
        }
        *asked = rest;
        batch
    }

    async fn send(&self, batch: Vec<(String, oneshot::Sender<Result<Loaded>>)>) {
        let ids: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
        match load_many(&self.db, &ids, self.queue_cap, true).await {
            Ok(mut loaded) => {
                for (id, tx) in batch {
                    let one = loaded
                        .remove(&id)
                        .unwrap_or(Err(Error::NotFound("session")));
                    let _ = tx.send(one);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, sessions = ids.len(), "cannot load sessions");
                for (_, tx) in batch {
                    let _ = tx.send(Err(Error::Unavailable));
                }
            }
        }
    }
}

/// Load session `id`'s whole state; with `take_over`, as the actor that
/// will serve it (bumping its epoch, see `sessions::take_over`). Also its
/// commit counter and epoch.
pub async fn load_state(
    db: &PgPool,
    id: &str,
    queue_cap: usize,
    take_over: bool,
) -> Result<(SessionState, i64, i64)> {
    let mut loaded = load_many(db, &[id.to_owned()], queue_cap, take_over).await?;
    let one = loaded
        .remove(id)
        .unwrap_or(Err(Error::NotFound("session")))?;
    Ok((one.state, one.commits, one.epoch))
}

/// Load sessions `ids` (distinct), one query per table for all of them:
/// each found session's outcome by id (a stored row the hub cannot read
/// fails only its session). An error fails them all.
async fn load_many(
    db: &PgPool,
    ids: &[String],
    queue_cap: usize,
    take_over: bool,
) -> Result<HashMap<String, Result<Loaded>>> {
    let mut refs = sessions::refs_of(db, ids).await?;
    let found: Vec<String> = ids
        .iter()
        .filter(|id| refs.contains_key(*id))
        .cloned()
        .collect();
    if found.is_empty() {
        return Ok(HashMap::new());
    }
    let playlists: Vec<String> = found.iter().map(|id| refs[id].1.id.clone()).collect();
    // From here on, a hub that served the session before cannot commit.
    let mut counters = sessions::counters_of(db, &found, take_over).await?;
    let mut queues = sessions::queues_of(db, &found).await?;
    let mut members = sessions::members_of(db, &found).await?;
    let mut answered = log::answered_reqs_of(db, &found, &playlists).await?;
    let mut last_at = log::last_at_of(db, &found, &playlists).await?;
    let mut parties = crate::db::party::load_of(db, &found).await?;
    let mut history = crate::db::party::history_of(db, &found, party::HISTORY as i64).await?;
    let mut played = crate::db::party::played_tracks_of(db, &found).await?;
    // Only an actor suggests "up next"; a snapshot read needs no reactions.
    let mut reactions = if take_over {
        crate::db::party::reactions_of(db, &found, upnext::REACTIONS as i64).await?
    } else {
        HashMap::new()
    };
    let now_ids: Vec<String> = parties
        .values()
        .filter_map(|p| p.now.as_ref().map(|n| n.track_id.clone()))
        .collect();
    let mut now_tracks: HashMap<String, audotics_protocol::model::Track> = if now_ids.is_empty() {
        HashMap::new()
    } else {
        crate::db::tracks::by_ids(db, &now_ids)
            .await?
            .into_iter()
            .map(|t| (t.id.to_string(), t))
            .collect()
    };
    let mut out = HashMap::new();
    for id in found {
        let (session, playlist) = refs.remove(&id).expect("found");
        let Some((version, commits, epoch)) = counters.remove(&id) else {
            out.insert(id, Err(Error::NotFound("session")));
            continue;
        };
        let stored_party = parties.remove(&id).unwrap_or_default();
        let now_track = stored_party
            .now
            .as_ref()
            .and_then(|n| now_tracks.remove(&n.track_id));
        let rows = Rows {
            queue: queues.remove(&id).unwrap_or_default(),
            members: members.remove(&id).unwrap_or_default(),
            answered: answered.remove(&id).unwrap_or_default(),
            last_at: last_at.remove(&id).unwrap_or_else(now_ms),
            party: stored_party,
            now_track,
            history: history.remove(&id).unwrap_or_default(),
            played: played.remove(&id).unwrap_or_default(),
        };
        let one = build(session, playlist, version, queue_cap, rows).map(|state| Loaded {
            state,
            commits,
            epoch,
            reactions: reactions.remove(&id).unwrap_or_default(),
        });
        out.insert(id, one);
    }
    Ok(out)
}

/// One session's stored rows.
struct Rows {
    queue: Vec<sessions::StoredEntry>,
    members: Vec<sessions::MemberRow>,
    answered: HashMap<(audotics_protocol::UserId, audotics_protocol::Req), i64>,
    last_at: chrono::DateTime<chrono::Utc>,
    party: crate::db::party::StoredParty,
    now_track: Option<audotics_protocol::model::Track>,
    history: Vec<crate::db::party::PlayedRow>,
    played: std::collections::HashSet<String>,
}

/// A session's state from its stored rows.
fn build(
    mut session: audotics_protocol::model::SessionRef,
    playlist: audotics_protocol::model::PlaylistRef,
    version: i64,
    queue_cap: usize,
    rows: Rows,
) -> Result<SessionState> {
    let mut entries = Vec::with_capacity(rows.queue.len());
    for e in rows.queue {
        let bad = |what: String| Error::Internal(anyhow::anyhow!("stored queue entry: {what}"));
        let entry = EntryId::parse(&e.entry_id).map_err(|x| bad(x.to_string()))?;
        let position = Position::parse(&e.position).map_err(|x| bad(x.to_string()))?;
        entries.push(Entry {
            id: entry.uuid(),
            position,
            item: Item {
                track: Arc::new(e.track),
                added_by: e.added_by,
                added_at: e.added_at,
                votes: e.votes,
                round: e.round,
                pinned_at: e.pinned_at,
            },
        });
    }
    // A queue stored under a larger cap still loads; it just takes no adds.
    let cap = queue_cap.max(entries.len()).max(1);
    let queue = Queue::from_entries(entries, cap)
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored queue: {e}")))?;
    if let Some(host) = &rows.party.host {
        session.host_id = host.clone();
    }
    let party = party::Party::from_stored(rows.party, rows.now_track, rows.history);
    Ok(SessionState::new(
        session,
        playlist,
        version,
        queue,
        rows.members,
        rows.answered,
        rows.last_at,
    )
    .with_party(party, rows.played))
}
