//! The engine's rules, as unit tests and properties.

use std::collections::HashSet;

use proptest::prelude::*;
use serde_json::json;

use super::catalog::f;
use super::group::{aggregate, key};
use super::synth::{self, track_id, SynthCatalog};
use super::Strategy;
use super::*;
use audotics_protocol::model::{Preferences, TrackFeatures};

fn prefs(
    top_artists: &[&str],
    genres: &[&str],
    features: Option<serde_json::Value>,
) -> Preferences {
    Preferences {
        top_tracks: Vec::new(),
        top_artists: top_artists.iter().map(|s| s.to_string()).collect(),
        genres: genres.iter().map(|s| s.to_string()).collect(),
        features,
        last_updated: chrono::DateTime::UNIX_EPOCH,
    }
}

fn member(id: &str, p: Preferences) -> MemberTaste {
    MemberTaste::from_preferences(id, id.to_uppercase(), Some(&p))
}

/// A track's energy; a track without features counts as the middle.
fn energy(cat: &Catalog, id: &str) -> f32 {
    cat.features(cat.index_of(id).unwrap())
        .map_or(0.5, |x| x[f::ENERGY])
}

/// Mean energy of the suggestions that have features.
fn mean_energy(cat: &Catalog, list: &[Suggestion]) -> f32 {
    let known: Vec<f32> = list
        .iter()
        .filter_map(|s| cat.features(cat.index_of(&s.track_id).unwrap()))
        .map(|x| x[f::ENERGY])
        .collect();
    known.iter().sum::<f32>() / known.len() as f32
}

/// Resolve a room the way `suggest_with` does and give the exact group key
/// of every track that may be suggested, for checking the fast path.
fn exact_keys(cat: &Catalog, room: &Room, strategy: &Strategy) -> Vec<(u32, f32)> {
    let p = Prepared::new(cat, room, strategy);
    (0..cat.len() as u32)
        .filter(|t| p.excluded.binary_search(t).is_err())
        .map(|t| {
            let r = p.room.term(cat.features(TrackIx(t)).as_ref());
            let (sat, own): (Vec<f32>, Vec<f32>) = p
                .models
                .iter()
                .map(|m| m.satisfaction(cat, t as usize, r))
                .unzip();
            let (score, worst) = aggregate(&p.weights, &sat, &own);
            (t, key(score, worst))
        })
        .collect()
}

struct World {
    synth: SynthCatalog,
    cat: Catalog,
}

fn world(tracks: usize, clusters: usize, seed: u64) -> World {
    let synth = synth::catalog(tracks, clusters, seed);
    let cat = Catalog::from_rows(synth.rows.clone());
    World { synth, cat }
}

/// A random room over `w`: members from `synth::room`, some cold ones,
/// some reactions, history and exclusions.
fn random_room(w: &World, seed: u64, members: usize, cold: usize, reactions: usize) -> Room {
    let (mut tastes, _) = synth::room(&w.synth, members, 2, true, seed);
    for i in 0..cold {
        tastes.push(MemberTaste::new(format!("cold{i}"), format!("Cold {i}")));
    }
    let mut rng = synth::Rng::new(seed ^ 0xABCD);
    let n = w.cat.len();
    let kinds = [
        ReactionKind::Like,
        ReactionKind::Skip,
        ReactionKind::Dislike,
        ReactionKind::Play,
        ReactionKind::Save,
    ];
    let reactions = (0..reactions)
        .map(|i| Reaction {
            user_id: tastes
                .get(rng.below(tastes.len()))
                .map_or("gone".to_owned(), |m| m.user_id.clone()),
            track_id: track_id(rng.below(n)),
            kind: kinds[rng.below(kinds.len())],
            at_ms: 1_000_000 - i as i64 * 60_000,
        })
        .collect();
    let history: Vec<String> = (0..rng.below(12)).map(|_| track_id(rng.below(n))).collect();
    let mut excluded: HashSet<String> = history.iter().cloned().collect();
    for _ in 0..rng.below(n / 2) {
        excluded.insert(track_id(rng.below(n)));
    }
    Room {
        members: tastes,
        excluded,
        history,
        reactions,
        now_ms: 1_000_000,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn never_an_excluded_track_nor_one_twice(
        seed in any::<u64>(),
        members in 0usize..6,
        cold in 0usize..3,
        reactions in 0usize..8,
        n in 1usize..25,
    ) {
        let w = world(700, 6, seed);
        let mut room = random_room(&w, seed, members, cold, reactions);
        if members == 0 {
            room.members.clear();
        }
        let list = suggest(&w.cat, &room, n);
        let allowed = w.cat.len() - room.excluded.len();
        prop_assert_eq!(list.len(), n.min(allowed));
        let mut seen = HashSet::new();
        for s in &list {
            prop_assert!(!room.excluded.contains(&s.track_id), "{} is excluded", s.track_id);
            prop_assert!(seen.insert(s.track_id.clone()), "{} twice", s.track_id);
            prop_assert!(!s.reason.is_empty());
            for u in &s.fits {
                prop_assert!(room.members.iter().any(|m| &m.user_id == u));
            }
        }
    }

    /// The vectorized scan keeps exactly what the scalar model ranks best:
    /// the first pick (fairness has nothing to act on yet) is the best
    /// exact key in the catalog.
    #[test]
    fn the_scan_agrees_with_the_exact_model(
        seed in any::<u64>(),
        members in 1usize..8,
        cold in 0usize..2,
        reactions in 0usize..10,
    ) {
        let w = world(900, 5, seed);
        let room = random_room(&w, seed, members, cold, reactions);
        let strategy = Strategy { fairness: 0.0, tolerance: 0.0, coverage: 0.0, ..Strategy::default() };
        let best = exact_keys(&w.cat, &room, &strategy)
            .into_iter()
            .map(|(_, k)| k)
            .fold(f32::NEG_INFINITY, f32::max);
        let first = &suggest_with(&w.cat, &room, 1, &strategy)[0];
        prop_assert!((first.score - best).abs() < 1e-4, "{} vs {}", first.score, best);
    }
}

#[test]
fn nothing_to_suggest_from_nothing() {
    let w = world(100, 2, 1);
    assert!(suggest(&w.cat, &Room::default(), 0).is_empty());
    assert!(suggest(&Catalog::from_rows([]), &Room::default(), 10).is_empty());
    let all: HashSet<String> = (0..100).map(track_id).collect();
    let room = Room {
        excluded: all,
        ..Room::default()
    };
    assert!(suggest(&w.cat, &room, 10).is_empty());
}

#[test]
fn a_member_who_strongly_dislikes_something_vetoes_it() {
    let w = world(5_000, 12, 42);
    let party = json!({ "energy": { "min": 0.75 } });
    let mut room = Room {
        members: vec![
            member("ana", prefs(&[], &[], Some(party.clone()))),
            member("ben", prefs(&[], &[], Some(party.clone()))),
            member("cy", prefs(&[], &[], Some(party))),
        ],
        ..Room::default()
    };
    let loud = suggest(&w.cat, &room, 10);
    assert!(mean_energy(&w.cat, &loud) > 0.75);

    // Dee cannot stand high energy: every track she would hate is vetoed,
    // though three of four would love it.
    room.members.push(member(
        "dee",
        prefs(&[], &[], Some(json!({ "energy": { "max": 0.3 } }))),
    ));
    let list = suggest(&w.cat, &room, 10);
    assert_eq!(list.len(), 10);
    for s in &list {
        let e = energy(&w.cat, &s.track_id);
        assert!(e < 0.6, "{} has energy {e}", s.track_id);
        assert!(s.score >= 0.0, "nobody vetoes it");
    }

    // A dislike tonight vetoes the artist for that member, even one the
    // others call a favourite.
    let fav = w
        .cat
        .artist_name(w.cat.artists(TrackIx(0)).next().unwrap())
        .to_owned();
    let mut room = Room {
        members: vec![
            member("ana", prefs(&[&fav], &[], None)),
            member("ben", prefs(&[&fav], &[], None)),
            member("cy", prefs(&[], &[], None)),
        ],
        ..Room::default()
    };
    let by_fav = |list: &[Suggestion]| {
        list.iter()
            .filter(|s| {
                let t = w.cat.index_of(&s.track_id).unwrap();
                w.cat.artists(t).any(|a| w.cat.artist_name(a) == fav)
            })
            .count()
    };
    let strategy = Strategy {
        one_per_artist: false,
        ..Strategy::default()
    };
    let before = suggest_with(&w.cat, &room, 5, &strategy);
    assert!(by_fav(&before) >= 3, "{before:?}");
    assert!(
        before[0]
            .reason
            .starts_with("a favourite artist of ANA and BEN")
            || before[0]
                .reason
                .contains("by a favourite artist of ANA and BEN"),
        "{}",
        before[0].reason
    );
    room.reactions.push(Reaction {
        user_id: "cy".into(),
        track_id: track_id(0),
        kind: ReactionKind::Dislike,
        at_ms: 0,
    });
    room.excluded.insert(track_id(0));
    let after = suggest_with(&w.cat, &room, 5, &strategy);
    assert_eq!(by_fav(&after), 0, "{after:?}");
}

#[test]
fn the_quiet_members_taste_counts_with_the_fairness_term() {
    // Three friends who share a style and a quiet guest from another one:
    // the guest never reacts, but has preferences.
    let w = world(20_000, 24, 7);
    let mut with_guest = 0;
    let mut without = 0;
    let mut rooms_served = 0;
    for seed in 0..8 {
        let (members, _) = synth::room(&w.synth, 4, 1, true, seed);
        let room = Room {
            members,
            ..Room::default()
        };
        let count = |strategy: &Strategy| {
            suggest_with(&w.cat, &room, 10, strategy)
                .iter()
                .filter(|s| s.fits.contains(&"u3".to_owned()))
                .count()
        };
        let fair = count(&Strategy::default());
        let unfair = count(&Strategy {
            fairness: 0.0,
            tolerance: 0.0,
            coverage: 0.0,
            ..Strategy::default()
        });
        with_guest += fair;
        without += unfair;
        rooms_served += (fair > 0) as usize;
    }
    assert_eq!(
        rooms_served, 8,
        "the guest has a track in every room's top 10"
    );
    assert!(
        with_guest > without,
        "fairness serves the guest more: {with_guest} vs {without}"
    );
}

#[test]
fn three_skips_of_high_energy_tracks_move_the_list_toward_lower_energy() {
    let w = world(20_000, 24, 11);
    let mut drop = 0.0;
    for seed in 0..6 {
        // Friends who share a style, with the energy of the style's spread.
        let (members, _) = synth::room(&w.synth, 4, 1, false, seed);
        let mut room = Room {
            members,
            now_ms: 3_600_000,
            ..Room::default()
        };
        let before = suggest(&w.cat, &room, 10);
        // Three energetic tracks the room might well have queued, of
        // different styles, are played and skipped.
        let top: Vec<usize> = suggest(&w.cat, &room, 300)
            .iter()
            .map(|s| w.cat.index_of(&s.track_id).unwrap().get())
            .collect();
        for (i, t) in synth::loudest_distinct(&w.synth, &top, 3)
            .into_iter()
            .enumerate()
        {
            room.history.push(track_id(t));
            room.excluded.insert(track_id(t));
            room.reactions.push(Reaction {
                user_id: room.members[i].user_id.clone(),
                track_id: track_id(t),
                kind: ReactionKind::Skip,
                at_ms: room.now_ms - 60_000 * (3 - i as i64),
            });
        }
        let after = suggest(&w.cat, &room, 10);
        let (e0, e1) = (mean_energy(&w.cat, &before), mean_energy(&w.cat, &after));
        assert!(e1 < e0, "room {seed}: energy {e0} → {e1}");
        drop += (e0 - e1) / 6.0;
    }
    assert!(drop > 0.03, "mean energy fell by {drop}");
}

fn plain_catalog(n: usize, features: bool) -> Catalog {
    Catalog::from_rows((0..n).map(|i| CatalogRow {
        id: track_id(i),
        spotify_id: format!("s{i}"),
        artists: vec![format!("Artist {i}")],
        popularity: (i * 37 % 101) as i32,
        features: features.then(|| TrackFeatures {
            danceability: (i % 10) as f64 / 10.0,
            energy: (i % 7) as f64 / 7.0,
            key: (i % 12) as i32,
            loudness: -8.0,
            mode: 1,
            speechiness: 0.05,
            acousticness: (i % 5) as f64 / 5.0,
            instrumentalness: 0.0,
            liveness: 0.1,
            valence: (i % 9) as f64 / 9.0,
            tempo: 90.0 + (i % 60) as f64,
        }),
    }))
}

#[test]
fn cold_start_goes_by_the_rooms_reactions_then_popularity_in_its_genres() {
    // Nobody has preferences and nothing happened: the most popular first.
    let cat = plain_catalog(500, true);
    let room = Room {
        members: vec![MemberTaste::new("a", "A"), MemberTaste::new("b", "B")],
        ..Room::default()
    };
    let list = suggest(&cat, &room, 5);
    let pops: Vec<f32> = list
        .iter()
        .map(|s| cat.popularity(cat.index_of(&s.track_id).unwrap()))
        .collect();
    assert!(pops.iter().all(|p| *p >= 0.99), "{pops:?}");
    assert!(list.iter().all(|s| s.fits.is_empty()));

    // Once a genre is in the room (here: what was queued), its popular
    // tracks come first.
    let queued = track_id(3);
    let g = cat.genre(cat.index_of(&queued).unwrap()).unwrap();
    let room = Room {
        history: vec![queued.clone()],
        excluded: [queued].into(),
        ..room
    };
    let list = suggest(&cat, &room, 5);
    for s in &list {
        assert_eq!(cat.genre(cat.index_of(&s.track_id).unwrap()), Some(g));
        assert_eq!(
            s.reason,
            format!("popular with the room's {} fans", g.label())
        );
    }

    // Then the room likes a few calm tracks: cold members follow the room.
    let calm: Vec<String> = (0..500)
        .map(track_id)
        .filter(|id| energy(&cat, id) == 0.0)
        .take(3)
        .collect();
    let mut room = room;
    for id in &calm {
        room.reactions.push(Reaction {
            user_id: "a".into(),
            track_id: id.clone(),
            kind: ReactionKind::Like,
            at_ms: 0,
        });
        room.excluded.insert(id.clone());
    }
    room.members[0] = MemberTaste::new("c", "C");
    let list = suggest(&cat, &room, 5);
    assert!(mean_energy(&cat, &list) < 0.15, "{list:?}");
    assert!(list
        .iter()
        .any(|s| s.reason.contains("like what the room liked")));
}

#[test]
fn tracks_without_features_go_by_popularity_and_artists() {
    let cat = plain_catalog(300, false);
    let room = Room {
        members: vec![
            member(
                "ana",
                prefs(&["Artist 7"], &["pop"], Some(json!({ "energy": 0.9 }))),
            ),
            MemberTaste::new("ben", "Ben"),
        ],
        ..Room::default()
    };
    let list = suggest(&cat, &room, 3);
    assert_eq!(list[0].track_id, track_id(7));
    assert_eq!(list[0].reason, "a favourite artist of ANA");
    assert_eq!(list[0].fits, ["ana"]);
    assert!(list[1..]
        .iter()
        .all(|s| cat.popularity(cat.index_of(&s.track_id).unwrap()) >= 0.98));
}

#[test]
fn preferences_shape_the_list_and_the_reason() {
    let w = world(10_000, 16, 5);
    let calm = json!({ "energy": { "max": 0.3 }, "acousticness": { "min": 0.6 } });
    let room = Room {
        members: vec![
            member("ana", prefs(&[], &["folk"], Some(calm.clone()))),
            member("ben", prefs(&[], &[], Some(calm.clone()))),
            member("cy", prefs(&[], &[], Some(calm))),
        ],
        ..Room::default()
    };
    let list = suggest(&w.cat, &room, 10);
    assert!(mean_energy(&w.cat, &list) < 0.35);
    assert_eq!(list[0].fits, ["ana", "ben", "cy"]);
    assert!(
        list[0].reason.ends_with("close to what all of you liked"),
        "{}",
        list[0].reason
    );
    assert!(list
        .iter()
        .any(|s| s.reason.contains("mellow") || s.reason.contains("acoustic")));
}
