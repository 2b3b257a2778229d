//! "Up next for this room" (issue 19): live group suggestions from who is
//! here and how they react.
//!
//! A pure engine, like the queue model: [`suggest`] is synchronous, does no
//! I/O and allocates only per member, never per track; only the catalog's
//! loader ([`Catalog::load`], [`SharedCatalog::refresh`]) reads Postgres.
//! The hub keeps a
//! [`Catalog`] in memory ([`SharedCatalog`], reloaded when the tables
//! change), keeps a [`Room`] per session (members online with their
//! [`MemberTaste`], what played or is queued, the session's reactions), and
//! calls [`suggest`] when the room changes. One call resolves each member's
//! taste against the catalog and the reactions (`taste`), scans every track
//! for every member in a tight loop (`scan`), and picks the list with the
//! group strategy (`group`: average without misery with a fairness term,
//! after Masthoff), each pick with a reason (`reasons`).
//!
//! Modules: [`catalog`] (struct-of-arrays catalog, loader, stamp),
//! [`genre`] (genre families for tracks and members), [`taste`] (members,
//! reactions, the per-member satisfaction model, cold start), [`group`]
//! (the strategy), `scan` (the hot loop), [`reasons`] (the words),
//! [`synth`] (synthetic data for the bench, the evaluation and tests).

pub mod catalog;
pub mod genre;
pub mod group;
pub mod reasons;
mod scan;
pub mod synth;
pub mod taste;

use std::collections::HashSet;

pub use catalog::{Catalog, CatalogRow, CatalogStamp, SharedCatalog, TrackIx};
pub use group::Strategy;
pub use taste::{MemberTaste, Reaction, ReactionKind, Source};

use genre::GenreSet;
use group::{Served, Weights};
use taste::{Model, RoomProfile};

/// What the engine needs to know about one session, right now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Room {
    /// The members online (an empty room gets popularity).
    pub members: Vec<MemberTaste>,
    /// `"Track"."id"`s never to suggest: queued, played, and suggestions
    /// dismissed or expired.
    pub excluded: HashSet<String>,
    /// What played and was queued, oldest first: the sequence the fairness
    /// term accumulates over (tracks may repeat; unknown ids are ignored;
    /// tracks someone skipped or disliked do not count).
    pub history: Vec<String>,
    /// The session's reactions, by anyone who was there.
    pub reactions: Vec<Reaction>,
    /// Now, in ms since the epoch (reactions decay by age).
    pub now_ms: i64,
}

/// One suggestion.
#[derive(Clone, Debug, PartialEq)]
pub struct Suggestion {
    /// `"Track"."id"`: what a one-tap `add` sends.
    pub track_id: String,
    /// The group score it was picked with: the fairness-weighted average
    /// predicted satisfaction, 0..1 (negative: someone would mind, and
    /// nothing better was left).
    pub score: f32,
    /// A short phrase a person can read.
    pub reason: String,
    /// Members (user ids) predicted to enjoy it (satisfaction ≥ 0.6).
    pub fits: Vec<String>,
}

/// The best `n` suggestions for `room` under the default [`Strategy`].
pub fn suggest(catalog: &Catalog, room: &Room, n: usize) -> Vec<Suggestion> {
    suggest_with(catalog, room, n, &Strategy::default())
}

/// The best `n` suggestions for `room` under `strategy`: never an excluded
/// track, never the same track twice.
pub fn suggest_with(
    catalog: &Catalog,
    room: &Room,
    n: usize,
    strategy: &Strategy,
) -> Vec<Suggestion> {
    if n == 0 || catalog.is_empty() {
        return Vec::new();
    }
    let p = Prepared::new(catalog, room, strategy);
    let cands = scan::scan(
        catalog,
        &scan::ScanInput {
            models: &p.models,
            weights: &p.weights,
            room: &p.room,
            excluded: &p.excluded,
            artist_filter: &p.artist_filter,
        },
        4 * n + 20,
        (n / 3).max(2),
    );
    let picks = group::select(catalog, &p.models, &cands, &p.served, strategy, n);
    picks
        .into_iter()
        .map(|pick| {
            let c = &cands[pick.candidate];
            let t = TrackIx(c.track);
            let why = reasons::explain(
                catalog,
                &p.members,
                &p.models,
                &p.room,
                p.room_genres,
                t,
                &c.sat,
                strategy.fit,
            );
            Suggestion {
                track_id: catalog.track_id(t).to_owned(),
                score: pick.key,
                reason: reasons::describe(&why),
                fits: p
                    .members
                    .iter()
                    .zip(&p.models)
                    .zip(&c.sat)
                    .filter(|((_, md), s)| md.source == Source::Own && **s >= strategy.fit)
                    .map(|((m, _), _)| m.user_id.clone())
                    .collect(),
            }
        })
        .collect()
}

/// Everything a recompute derives from the room before the scan; small
/// (members × features), built fresh each time.
struct Prepared {
    members: Vec<MemberTaste>,
    models: Vec<Model>,
    room: RoomProfile,
    room_genres: GenreSet,
    served: Served,
    weights: Weights,
    excluded: Vec<u32>,
    artist_filter: [u64; 64],
}

impl Prepared {
    fn new(cat: &Catalog, room: &Room, strategy: &Strategy) -> Prepared {
        let members = if room.members.is_empty() {
            vec![MemberTaste::new("", "")]
        } else {
            room.members.clone()
        };
        let profile = RoomProfile::new(cat, &room.reactions, room.now_ms);
        let history: Vec<TrackIx> = room
            .history
            .iter()
            .filter_map(|id| cat.index_of(id))
            .collect();
        let mut room_genres = members
            .iter()
            .fold(GenreSet::default(), |g, m| g.union(m.genres));
        if room_genres.is_empty() {
            for g in history.iter().filter_map(|t| cat.genre(*t)) {
                room_genres.insert(g);
            }
        }
        let models: Vec<Model> = members
            .iter()
            .map(|m| Model::new(cat, m, &room.reactions, room.now_ms, &profile, room_genres))
            .collect();
        // A track someone skipped or disliked served nobody: it stays out of
        // the fairness sequence (its signal is in the reactions).
        let cut: HashSet<&str> = room
            .reactions
            .iter()
            .filter(|r| r.kind.weight() < -0.5)
            .map(|r| r.track_id.as_str())
            .collect();
        let mut served = Served::new(models.len(), strategy.memory);
        let mut sat = vec![0.0; models.len()];
        for t in history.iter().filter(|t| !cut.contains(cat.track_id(**t))) {
            let r = profile.term(cat.features(*t).as_ref());
            for (s, md) in sat.iter_mut().zip(&models) {
                *s = md.satisfaction(cat, t.get(), r).0;
            }
            served.push(&sat);
        }
        let mut weights = Weights::default();
        served.weights(&models, strategy, &mut weights);
        let mut excluded: Vec<u32> = room
            .excluded
            .iter()
            .filter_map(|id| cat.index_of(id))
            .map(|t| t.0)
            .collect();
        excluded.sort_unstable();
        excluded.dedup();
        let mut artist_filter = [0u64; 64];
        for md in &models {
            for (a, _) in &md.artists {
                artist_filter[(a >> 6) as usize & 63] |= 1 << (a & 63);
            }
        }
        Prepared {
            members,
            models,
            room: profile,
            room_genres,
            served,
            weights,
            excluded,
            artist_filter,
        }
    }
}

#[cfg(test)]
mod tests;
