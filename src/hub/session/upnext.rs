//! "Up next for this room" (issue 19): the session actor's side of group
//! suggestions. The actor keeps what the engine (`crate::suggest`) needs —
//! its members' tastes, the session's reactions — and, when the room changes
//! (someone joins or leaves, reacts, a track starts, the queue changes),
//! recomputes after a short debounce on a blocking thread, then pushes a
//! `suggestions` frame. One computation runs at a time; a newer room state
//! simply schedules the next.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use audotics_protocol::party::Suggested;
use audotics_protocol::{ServerMsg, UserId};
use axum::extract::ws::Utf8Bytes;
use sqlx::PgPool;

use super::listeners::frame;
use crate::clock::now_ms;
use crate::db::party::StoredReaction;
use crate::db::{tracks, users};
use crate::hub::tracks::TrackCache;
use crate::suggest::{self, MemberTaste, Reaction, ReactionKind, SharedCatalog};

/// Suggestions in a list.
pub const ITEMS: usize = 10;
/// A change waits this long for the ones that follow it.
const DEBOUNCE: Duration = Duration::from_millis(400);
/// A member's taste is read from Postgres again after this long (their
/// preferences may have changed).
const TASTE_TTL: Duration = Duration::from_secs(30);
/// Reactions the actor remembers.
pub(crate) const REACTIONS: usize = 500;

/// A computation looks whether the catalog changed at most this often.
const CATALOG_CHECK_MS: i64 = 2_000;

/// The hub's catalog for suggestions: loaded in the background at start (a
/// hub serves before it is ready, with empty suggestions), and looked at
/// again by a computation when it is older than [`CATALOG_CHECK_MS`] (a
/// reload only when the tables changed).
#[derive(Default)]
pub struct Catalogs {
    slot: OnceLock<SharedCatalog>,
    checked_ms: AtomicI64,
}

impl Catalogs {
    /// The catalog, checked for changes if it is time.
    pub async fn fresh(&self, db: &PgPool) -> Option<Arc<suggest::Catalog>> {
        let now = now_ms().timestamp_millis();
        let last = self.checked_ms.load(Ordering::Relaxed);
        let due = now - last >= CATALOG_CHECK_MS
            && self
                .checked_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if due {
            match self.slot.get() {
                Some(shared) => {
                    if let Err(e) = shared.refresh(db).await {
                        tracing::warn!(error = %e, "cannot refresh the suggestion catalog");
                    }
                }
                None => self.load(db).await,
            }
        }
        self.slot.get().map(SharedCatalog::get)
    }

    /// Tracks were written: the next computation looks at once.
    pub fn invalidate(&self) {
        self.checked_ms.store(0, Ordering::Relaxed);
    }

    async fn load(&self, db: &PgPool) {
        let started = Instant::now();
        match suggest::Catalog::load(db).await {
            Ok(c) => {
                tracing::info!(
                    tracks = c.len(),
                    took_ms = started.elapsed().as_millis() as u64,
                    "suggestion catalog loaded"
                );
                let shared = SharedCatalog::new(c);
                // Stamp it, so the next check reloads only on a change.
                let _ = shared.refresh(db).await;
                let _ = self.slot.set(shared);
            }
            Err(e) => tracing::warn!(error = %e, "cannot load the suggestion catalog"),
        }
    }
}

/// What the actor keeps for suggestions.
#[derive(Default)]
pub struct UpNext {
    tastes: HashMap<UserId, (MemberTaste, Instant)>,
    reactions: VecDeque<Reaction>,
    /// When to recompute (a change is waiting).
    pub due: Option<Instant>,
    generation: u64,
    running: bool,
    /// The latest list and its frame.
    last: Option<(i64, Vec<Suggested>, Utf8Bytes)>,
}

/// What one computation needs, taken from the actor's state.
pub struct Inputs {
    pub generation: u64,
    pub version: i64,
    /// Online members: (id, name).
    pub members: Vec<(UserId, String)>,
    /// Their tastes the actor knows (fresh).
    pub tastes: HashMap<UserId, MemberTaste>,
    pub excluded: HashSet<String>,
    pub history: Vec<String>,
    pub reactions: Vec<Reaction>,
}

/// A computation's result.
pub struct Done {
    pub generation: u64,
    pub version: i64,
    pub items: Vec<Suggested>,
    /// Tastes read from Postgres for it.
    pub loaded: Vec<(UserId, MemberTaste)>,
}

impl UpNext {
    /// Something the room cares about changed: recompute soon.
    pub fn touch(&mut self) {
        if self.due.is_none() {
            self.due = Some(Instant::now() + DEBOUNCE);
        }
    }

    /// Whether a computation may start now.
    pub fn ready(&self) -> bool {
        !self.running
    }

    /// A reaction (stored), for the next computation.
    pub fn react(&mut self, user: &UserId, track: &str, kind: &str, at_ms: i64) {
        let Some(kind) = ReactionKind::parse(kind) else {
            return;
        };
        self.reactions.push_back(Reaction {
            user_id: user.to_string(),
            track_id: track.to_owned(),
            kind,
            at_ms,
        });
        while self.reactions.len() > REACTIONS {
            self.reactions.pop_front();
        }
    }

    /// Remember the session's stored reactions (at load).
    pub fn remember(&mut self, stored: Vec<Reaction>) {
        self.reactions = stored.into();
    }

    /// Start a computation: its inputs (the room as the actor sees it).
    pub fn start(
        &mut self,
        version: i64,
        members: Vec<(UserId, String)>,
        excluded: HashSet<String>,
        history: Vec<String>,
    ) -> Inputs {
        self.due = None;
        self.running = true;
        self.generation += 1;
        let tastes = members
            .iter()
            .filter_map(|(id, _)| {
                let (t, at) = self.tastes.get(id)?;
                (at.elapsed() < TASTE_TTL).then(|| (id.clone(), t.clone()))
            })
            .collect();
        Inputs {
            generation: self.generation,
            version,
            members,
            tastes,
            excluded,
            history,
            reactions: self.reactions.iter().cloned().collect(),
        }
    }

    /// A computation ended: the frame to push if it is the latest.
    pub fn done(&mut self, done: Done) -> Option<Utf8Bytes> {
        let now = Instant::now();
        for (id, taste) in done.loaded {
            self.tastes.insert(id, (taste, now));
        }
        if done.generation != self.generation {
            return None;
        }
        self.running = false;
        let f = frame(&ServerMsg::Suggestions {
            version: done.version,
            at: now_ms(),
            items: done.items.clone(),
        });
        if self
            .last
            .as_ref()
            .is_some_and(|(_, items, _)| *items == done.items)
        {
            // Nothing new to show.
            return None;
        }
        self.last = Some((done.version, done.items, f.clone()));
        Some(f)
    }

    /// The latest frame (for a joiner).
    pub fn frame(&self) -> Option<Utf8Bytes> {
        self.last.as_ref().map(|(_, _, f)| f.clone())
    }

    /// The latest list, if one was computed.
    pub fn latest(&self) -> Option<(i64, Vec<Suggested>)> {
        self.last.as_ref().map(|(v, items, _)| (*v, items.clone()))
    }
}

/// Compute `inputs`' suggestions: read the tastes it lacks, score on a
/// blocking thread, and give each suggestion its track.
pub async fn compute(
    inputs: Inputs,
    db: PgPool,
    catalogs: Arc<Catalogs>,
    cache: Arc<TrackCache>,
) -> Done {
    let Inputs {
        generation,
        version,
        members,
        mut tastes,
        excluded,
        history,
        reactions,
    } = inputs;
    let mut loaded = Vec::new();
    for (id, name) in &members {
        if tastes.contains_key(id) {
            continue;
        }
        let prefs = users::preferences(&db, id.as_str()).await.ok().flatten();
        let t = MemberTaste::from_preferences(id.to_string(), name.clone(), prefs.as_ref());
        loaded.push((id.clone(), t.clone()));
        tastes.insert(id.clone(), t);
    }
    let Some(catalog) = catalogs.fresh(&db).await else {
        return Done {
            generation,
            version,
            items: Vec::new(),
            loaded,
        };
    };
    let room = suggest::Room {
        members: members
            .iter()
            .filter_map(|(id, _)| tastes.get(id).cloned())
            .collect(),
        excluded,
        history,
        reactions,
        now_ms: now_ms().timestamp_millis(),
    };
    let picked = tokio::task::spawn_blocking(move || suggest::suggest(&catalog, &room, ITEMS))
        .await
        .unwrap_or_default();
    // Each with its track as the catalog stores it.
    let missing: Vec<String> = picked
        .iter()
        .filter(|s| cache.get(&s.track_id).is_none())
        .map(|s| s.track_id.clone())
        .collect();
    if !missing.is_empty() {
        if let Ok(found) = tracks::by_ids(&db, &missing).await {
            for t in found {
                cache.put(Arc::new(t));
            }
        }
    }
    let items = picked
        .into_iter()
        .filter_map(|s| {
            let track = cache.get(&s.track_id)?;
            Some(Suggested {
                track: (*track).clone(),
                score: f64::from(s.score),
                reason: s.reason,
                fits: s.fits,
            })
        })
        .collect();
    Done {
        generation,
        version,
        items,
        loaded,
    }
}

/// The session's stored reactions (oldest first) as "up next" reads them.
pub fn stored_reactions(stored: Vec<StoredReaction>) -> Vec<Reaction> {
    stored
        .into_iter()
        .filter_map(|(user, track, kind, at)| {
            Some(Reaction {
                user_id: user,
                track_id: track,
                kind: ReactionKind::parse(&kind)?,
                at_ms: at.timestamp_millis(),
            })
        })
        .collect()
}

/// Load the catalog in the background at start.
pub async fn load_catalog(db: PgPool, catalogs: Arc<Catalogs>) {
    catalogs
        .checked_ms
        .store(now_ms().timestamp_millis(), Ordering::Relaxed);
    catalogs.load(&db).await;
}
