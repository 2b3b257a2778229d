//! Tracks the hub has recently read or written, by id, shared by every
//! session actor: an `add` of a track not yet in its session's queue would
//! otherwise cost a Postgres round trip before its commit can start.
//!
//! What the hub writes itself (`POST /v1/tracks`, `add.track` metadata)
//! replaces the cached copy once committed. A change made by another writer
//! of the database (the Prisma app) is seen once the entry is older than the
//! TTL. A track deleted meanwhile is still caught by the queue's foreign
//! key at commit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use audotics_protocol::model::Track;

/// How long a cached track is trusted before it is read again.
pub const TTL: Duration = Duration::from_secs(60);
/// Entries kept at most; when full, the cache starts over (tracks are small,
/// this bounds it to a few tens of MB).
pub const CAPACITY: usize = 100_000;

pub struct TrackCache {
    map: DashMap<String, (Arc<Track>, Instant)>,
    ttl: Duration,
    capacity: usize,
}

impl Default for TrackCache {
    fn default() -> Self {
        TrackCache::new(TTL, CAPACITY)
    }
}

impl TrackCache {
    pub fn new(ttl: Duration, capacity: usize) -> TrackCache {
        TrackCache {
            map: DashMap::new(),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// The track, if cached and younger than the TTL.
    pub fn get(&self, id: &str) -> Option<Arc<Track>> {
        let entry = self.map.get(id)?;
        let (track, at) = entry.value();
        (at.elapsed() < self.ttl).then(|| track.clone())
    }

    /// Remember `track` as it is now stored.
    pub fn put(&self, track: Arc<Track>) {
        if self.map.len() >= self.capacity && !self.map.contains_key(&track.id) {
            self.map.clear();
        }
        self.map.insert(track.id.clone(), (track, Instant::now()));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(id: &str, name: &str) -> Arc<Track> {
        Arc::new(Track {
            id: id.into(),
            spotify_id: format!("sp-{id}"),
            name: name.into(),
            artists: vec!["A".into()],
            album: "B".into(),
            popularity: 1,
            duration_ms: None,
            cover_url: None,
        })
    }

    #[test]
    fn a_put_track_is_found_and_replaced_by_the_next_put() {
        let c = TrackCache::default();
        assert!(c.get("t1").is_none());
        c.put(track("t1", "old"));
        assert_eq!(c.get("t1").unwrap().name, "old");
        c.put(track("t1", "new"));
        assert_eq!(c.get("t1").unwrap().name, "new");
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn an_entry_older_than_the_ttl_is_not_trusted() {
        let c = TrackCache::new(Duration::from_millis(20), 10);
        c.put(track("t1", "x"));
        assert!(c.get("t1").is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(c.get("t1").is_none());
    }

    #[test]
    fn a_full_cache_starts_over_instead_of_growing() {
        let c = TrackCache::new(TTL, 3);
        for i in 0..3 {
            c.put(track(&format!("t{i}"), "x"));
        }
        c.put(track("t1", "again")); // already there: no reset
        assert_eq!(c.len(), 3);
        c.put(track("t9", "x"));
        assert_eq!(c.len(), 1);
        assert!(c.get("t9").is_some());
    }
}
