//! The demo catalog: a few thousand generated tracks (plausible titles,
//! artists, albums, popularity and audio features) so that a newcomer can
//! search and queue music right after `audotics-hub serve --demo`.
//!
//! Generated deterministically from word lists with a seeded PRNG, so every
//! run produces the same catalog and loading it again only rewrites the same
//! rows. Every demo track is marked as demo data by its Spotify id: `demo`
//! followed by 18 letters and digits (22 characters, the length of a real
//! Spotify id), so `"spotifyId" LIKE 'demo%'` finds (or deletes) them all.
//!
//! It also has a few demo users, so that a demo party shows suggestions
//! tailored to who is in the room: `demo-ana@audotics.test`,
//! `demo-ben@…`, `demo-chloe@…`, `demo-dev@…` and `demo-eli@…`, all with the
//! password [`DEMO_PASSWORD`] (`demo-party`). Each has a distinct
//! `UserPreference`: genres, feature ranges, and top artists and top tracks
//! picked from the demo catalog to match those ranges. Loading again keeps
//! existing accounts (and their passwords) and rewrites the same
//! preferences.

use serde_json::{json, Value};
use sqlx::PgPool;

use crate::db::{tracks, users};
use crate::suggest::catalog::normalize;
use crate::suggest::taste::{parse_features, Target};
use audotics_protocol::model::TrackFeatures;
use audotics_protocol::model::TrackMeta;

/// How many tracks the demo catalog has.
pub const DEMO_TRACKS: usize = 3000;
/// The prefix every demo track's Spotify id starts with.
pub const DEMO_PREFIX: &str = "demo";

/// One generated track.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoTrack {
    pub input: TrackMeta,
    pub features: TrackFeatures,
}

/// SplitMix64: tiny, seeded, good enough for word picking.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

const ADJECTIVES: &[&str] = &[
    "Golden", "Electric", "Midnight", "Velvet", "Neon", "Silver", "Broken", "Burning", "Quiet",
    "Wild", "Lonely", "Crystal", "Hollow", "Endless", "Faded", "Restless", "Paper", "Northern",
    "Southern", "Sweet", "Bitter", "Blue", "Crimson", "Emerald", "Frozen", "Gentle", "Hidden",
    "Lucky", "Magnetic", "Pale", "Radiant", "Silent", "Strange", "Summer", "Winter", "Violet",
    "Distant", "Secret", "Shining", "Little",
];
const NOUNS: &[&str] = &[
    "Heart",
    "River",
    "City",
    "Dream",
    "Fire",
    "Ocean",
    "Highway",
    "Garden",
    "Mirror",
    "Signal",
    "Shadow",
    "Horizon",
    "Echo",
    "Satellite",
    "Parade",
    "Window",
    "Thunder",
    "Lights",
    "Season",
    "Island",
    "Letter",
    "Machine",
    "Moon",
    "Sky",
    "Storm",
    "Tide",
    "Valley",
    "Weekend",
    "Youth",
    "Memory",
    "Country",
    "Kingdom",
    "Harbor",
    "Canyon",
    "Avenue",
    "Rain",
    "Stars",
    "Wave",
    "Daydream",
    "Frequency",
];
const PHRASES: &[&str] = &[
    "Don't Let Go",
    "Hold On",
    "Run Away",
    "Stay Tonight",
    "Come Home",
    "Fall Apart",
    "Take Me Higher",
    "Never Enough",
    "Say My Name",
    "All Night Long",
    "One More Time",
    "Slow Down",
    "Lose Control",
    "Find Your Way",
    "Until the Morning",
    "Dance With Me",
    "Better Days",
    "Right Here",
    "Let It Burn",
    "Over Again",
];
const FIRST_NAMES: &[&str] = &[
    "Ava", "Leo", "Maya", "Jonah", "Iris", "Theo", "Nina", "Oscar", "Lena", "Felix", "Ruby",
    "Marco", "Zoe", "Elias", "Clara", "Jude", "Sofia", "Milo", "Hana", "Otis", "Nadia", "Rafael",
    "Yara", "Caleb",
];
const LAST_NAMES: &[&str] = &[
    "Rivers",
    "Stone",
    "Vega",
    "Moreau",
    "Lindqvist",
    "Okafor",
    "Tanaka",
    "Hart",
    "Delgado",
    "Winter",
    "Novak",
    "Sato",
    "Bell",
    "Castell",
    "Reyes",
    "Kowalski",
    "Frost",
    "Amari",
    "Quinn",
    "Laurent",
];
const BAND_PREFIX: &[&str] = &["The", "", "", ""];
const BAND_SUFFIX: &[&str] = &[
    "Collective",
    "Club",
    "Society",
    "Brothers",
    "Sisters",
    "Orchestra",
    "Project",
    "Machine",
    "Kids",
    "Ghosts",
    "Wolves",
    "Parade",
    "Union",
    "Trio",
    "Band",
    "Syndicate",
];
const ALBUM_WORDS: &[&str] = &[
    "Sessions",
    "Chronicles",
    "Stories",
    "Tapes",
    "Diaries",
    "Postcards",
    "Anthems",
    "Sketches",
    "Reflections",
    "Visions",
    "Nights",
    "Days",
    "Letters",
    "Songs",
];

fn artist_pool(rng: &mut Rng) -> Vec<String> {
    let mut names = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while names.len() < 240 {
        let name = match rng.below(3) {
            0 => format!("{} {}", rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES)),
            1 => {
                let p = rng.pick(BAND_PREFIX);
                let band = format!("{} {}", rng.pick(ADJECTIVES), rng.pick(BAND_SUFFIX));
                if p.is_empty() {
                    band
                } else {
                    format!("{p} {band}")
                }
            }
            _ => format!("{} {}", rng.pick(ADJECTIVES), rng.pick(NOUNS)),
        };
        if seen.insert(name.clone()) {
            names.push(name);
        }
    }
    names
}

fn title(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => format!("{} {}", rng.pick(ADJECTIVES), rng.pick(NOUNS)),
        1 => rng.pick(PHRASES).to_owned(),
        2 => format!("{} of the {}", rng.pick(NOUNS), rng.pick(NOUNS)),
        3 => format!("{} ({} Mix)", rng.pick(PHRASES), rng.pick(ADJECTIVES)),
        4 => format!("The {} {}", rng.pick(ADJECTIVES), rng.pick(NOUNS)),
        _ => format!("{} in the {}", rng.pick(NOUNS), rng.pick(NOUNS)),
    }
}

fn album(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!("{} {}", rng.pick(ADJECTIVES), rng.pick(NOUNS)),
        1 => format!("{} {}", rng.pick(NOUNS), rng.pick(ALBUM_WORDS)),
        2 => format!("The {} {}", rng.pick(ADJECTIVES), rng.pick(ALBUM_WORDS)),
        _ => format!("{} (Deluxe Edition)", rng.pick(NOUNS)),
    }
}

fn demo_id(rng: &mut Rng) -> String {
    const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut id = String::from(DEMO_PREFIX);
    for _ in 0..18 {
        id.push(ALNUM[rng.below(ALNUM.len())] as char);
    }
    id
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

/// The whole catalog; the same every time.
pub fn catalog() -> Vec<DemoTrack> {
    let mut rng = Rng(0x00A0_D071_C5DE_3000);
    let artists = artist_pool(&mut rng);
    let mut ids = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(DEMO_TRACKS);
    // Albums of 6–14 tracks by one main artist, sometimes with a guest.
    while out.len() < DEMO_TRACKS {
        let main = artists[rng.below(artists.len())].clone();
        let album_name = album(&mut rng);
        let album_pop = rng.range(5.0, 95.0);
        let energy_base = rng.range(0.15, 0.9);
        let tracks_on_album = 6 + rng.below(9);
        for _ in 0..tracks_on_album {
            if out.len() >= DEMO_TRACKS {
                break;
            }
            let mut names = vec![main.clone()];
            if rng.below(5) == 0 {
                let guest = artists[rng.below(artists.len())].clone();
                if guest != main {
                    names.push(guest);
                }
            }
            let mut spotify_id = demo_id(&mut rng);
            while !ids.insert(spotify_id.clone()) {
                spotify_id = demo_id(&mut rng);
            }
            let popularity = (album_pop + rng.range(-15.0, 15.0)).clamp(0.0, 100.0) as i32;
            let energy = (energy_base + rng.range(-0.15, 0.15)).clamp(0.0, 1.0);
            let features = TrackFeatures {
                danceability: round(rng.range(0.2, 0.95), 3),
                energy: round(energy, 3),
                key: rng.below(12) as i32,
                loudness: round(-20.0 + 17.0 * energy + rng.range(-2.0, 2.0), 2),
                mode: rng.below(2) as i32,
                speechiness: round(rng.range(0.02, 0.35), 3),
                acousticness: round((1.0 - energy) * rng.range(0.3, 1.0), 3),
                instrumentalness: round(
                    if rng.below(6) == 0 {
                        rng.range(0.5, 0.95)
                    } else {
                        rng.range(0.0, 0.1)
                    },
                    3,
                ),
                liveness: round(rng.range(0.04, 0.6), 3),
                valence: round(rng.range(0.05, 0.95), 3),
                tempo: round(rng.range(70.0, 180.0), 1),
            };
            out.push(DemoTrack {
                input: TrackMeta {
                    duration_ms: Some(duration_of(&spotify_id)),
                    spotify_id,
                    name: title(&mut rng),
                    artists: names,
                    album: album_name.clone(),
                    popularity: Some(popularity),
                    cover_url: None,
                },
                features,
            });
        }
    }
    out
}

/// The password of every demo user.
pub const DEMO_PASSWORD: &str = "demo-party";

/// One demo user and the preferences they get.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoUser {
    pub email: &'static str,
    pub name: &'static str,
    pub genres: Vec<String>,
    /// `UserPreference.features`: ranges per feature.
    pub features: Value,
    /// Artist names from the demo catalog.
    pub top_artists: Vec<String>,
    /// Spotify ids from the demo catalog.
    pub top_tracks: Vec<String>,
}

/// Who the demo users are and what they like, before the catalog picks
/// their artists and tracks.
fn demo_tastes() -> [(&'static str, &'static str, &'static [&'static str], Value); 5] {
    [
        (
            "demo-ana@audotics.test",
            "Ana",
            &["dance pop", "house"],
            json!({ "danceability": { "min": 0.7 }, "energy": { "min": 0.65 }, "valence": { "min": 0.5 } }),
        ),
        (
            "demo-ben@audotics.test",
            "Ben",
            &["indie rock", "alternative"],
            json!({ "energy": { "min": 0.6 }, "acousticness": { "max": 0.25 }, "danceability": { "max": 0.6 } }),
        ),
        (
            "demo-chloe@audotics.test",
            "Chloé",
            &["folk", "singer-songwriter"],
            json!({ "acousticness": { "min": 0.55 }, "energy": { "max": 0.45 }, "valence": { "min": 0.4 } }),
        ),
        (
            "demo-dev@audotics.test",
            "Dev",
            &["hip hop"],
            json!({ "speechiness": { "min": 0.22 }, "danceability": { "min": 0.6 } }),
        ),
        (
            "demo-eli@audotics.test",
            "Eli",
            &["ambient", "lo-fi"],
            json!({ "energy": { "max": 0.35 }, "instrumentalness": { "min": 0.4 } }),
        ),
    ]
}

/// Does a track with these features sit inside every range?
fn in_ranges(targets: &[Target], t: &TrackFeatures) -> bool {
    let x = normalize(t);
    targets
        .iter()
        .all(|r| (x[r.feature] - r.center).abs() <= r.half + 1e-6)
}

/// The demo users with their preferences; the same every time. Top artists:
/// the three with the most tracks inside the user's ranges; top tracks: the
/// five most popular such tracks, by different artists.
pub fn demo_users(catalog: &[DemoTrack]) -> Vec<DemoUser> {
    demo_tastes()
        .into_iter()
        .map(|(email, name, genres, features)| {
            let targets = parse_features(&features);
            let fitting: Vec<&DemoTrack> = catalog
                .iter()
                .filter(|t| in_ranges(&targets, &t.features))
                .collect();
            let mut per_artist: Vec<(String, usize)> = Vec::new();
            for t in &fitting {
                let a = &t.input.artists[0];
                match per_artist.iter_mut().find(|(n, _)| n == a) {
                    Some(e) => e.1 += 1,
                    None => per_artist.push((a.clone(), 1)),
                }
            }
            per_artist.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let mut by_pop = fitting.clone();
            by_pop.sort_by(|a, b| {
                b.input
                    .popularity
                    .cmp(&a.input.popularity)
                    .then_with(|| a.input.spotify_id.cmp(&b.input.spotify_id))
            });
            let mut top_tracks = Vec::new();
            let mut seen = Vec::new();
            for t in by_pop {
                if top_tracks.len() < 5 && !seen.contains(&&t.input.artists[0]) {
                    seen.push(&t.input.artists[0]);
                    top_tracks.push(t.input.spotify_id.clone());
                }
            }
            DemoUser {
                email,
                name,
                genres: genres.iter().map(|g| g.to_string()).collect(),
                features,
                top_artists: per_artist.into_iter().take(3).map(|a| a.0).collect(),
                top_tracks,
            }
        })
        .collect()
}

/// Upsert the demo catalog (tracks and their features) in one transaction,
/// then the demo users and their preferences. Idempotent: loading it again
/// rewrites the same rows and keeps existing accounts. Returns the number
/// of tracks.
pub async fn load(pool: &PgPool) -> anyhow::Result<usize> {
    let all = catalog();
    let mut tx = pool.begin().await?;
    for t in &all {
        let (track, _) = tracks::upsert(&mut tx, &t.input).await?;
        tracks::set_features(&mut *tx, &track.id, &t.features).await?;
    }
    tx.commit().await?;
    tracing::info!(tracks = all.len(), "demo catalog loaded");
    let people = demo_users(&all);
    for u in &people {
        let id = demo_account(pool, u).await?;
        users::set_preferences(
            pool,
            &id,
            &u.top_tracks,
            &u.top_artists,
            &u.genres,
            Some(&u.features),
        )
        .await?;
    }
    tracing::info!(
        users = people.len(),
        password = DEMO_PASSWORD,
        "demo users ready"
    );
    Ok(all.len())
}

/// A track's length, 2:20 to 5:40 (most pop songs), from its Spotify id:
/// the same every load, and no draw from the catalog's random stream (so
/// the rest of the catalog is as it always was).
fn duration_of(spotify_id: &str) -> i64 {
    let h = spotify_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    140_000 + (h % 200_001) as i64
}

/// The id of the demo user's account, made if missing (password
/// [`DEMO_PASSWORD`]); an existing account is kept as it is.
async fn demo_account(pool: &PgPool, u: &DemoUser) -> anyhow::Result<String> {
    if let Some((id, _)) = users::credentials(pool, u.email).await? {
        return Ok(id);
    }
    let hash = crate::auth::hash_password(DEMO_PASSWORD.to_owned()).await?;
    match users::create(pool, u.email, u.name, &hash).await {
        Ok(user) => Ok(user.id),
        // Made meanwhile (another hub loading the demo): use that one.
        Err(crate::error::Error::Conflict(_)) => users::credentials(pool, u.email)
            .await?
            .map(|(id, _)| id)
            .ok_or_else(|| anyhow::anyhow!("demo user {} vanished", u.email)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use audotics_protocol::rules;

    #[test]
    fn catalog_is_deterministic_valid_and_marked() {
        let a = catalog();
        assert_eq!(a.len(), DEMO_TRACKS);
        assert_eq!(a, catalog());
        let mut ids = std::collections::HashSet::new();
        for t in &a {
            let i = &t.input;
            assert_eq!(rules::spotify_id(&i.spotify_id).unwrap(), i.spotify_id);
            assert!(i.spotify_id.starts_with(DEMO_PREFIX) && i.spotify_id.len() == 22);
            assert!(ids.insert(i.spotify_id.clone()), "unique ids");
            rules::text("name", &i.name, rules::TRACK_NAME_MAX).unwrap();
            rules::text("album", &i.album, rules::TRACK_NAME_MAX).unwrap();
            rules::artists(&i.artists).unwrap();
            rules::popularity(i.popularity.unwrap()).unwrap();
            let f = &t.features;
            for v in [
                f.danceability,
                f.energy,
                f.speechiness,
                f.acousticness,
                f.instrumentalness,
                f.liveness,
                f.valence,
            ] {
                assert!((0.0..=1.0).contains(&v));
            }
            assert!((0..=11).contains(&f.key) && (0..=1).contains(&f.mode));
            assert!((-100.0..=10.0).contains(&f.loudness));
            assert!((0.0..=400.0).contains(&f.tempo));
        }
    }

    #[test]
    fn demo_users_have_distinct_valid_tastes_from_the_catalog() {
        let tracks = catalog();
        let people = demo_users(&tracks);
        assert_eq!(people, demo_users(&tracks), "deterministic");
        assert_eq!(people.len(), 5);
        for u in &people {
            assert!(u.email.starts_with("demo-") && u.email.ends_with("@audotics.test"));
            rules::email(u.email).unwrap();
            rules::text("name", u.name, rules::NAME_MAX).unwrap();
            rules::string_list("genres", &u.genres).unwrap();
            rules::string_list("topArtists", &u.top_artists).unwrap();
            rules::string_list("topTracks", &u.top_tracks).unwrap();
            assert_eq!(u.top_artists.len(), 3, "{}", u.name);
            assert_eq!(u.top_tracks.len(), 5, "{}", u.name);
            for a in &u.top_artists {
                assert!(tracks.iter().any(|t| &t.input.artists[0] == a));
            }
            for s in &u.top_tracks {
                assert!(tracks.iter().any(|t| &t.input.spotify_id == s));
            }
            assert!(!crate::suggest::genre::GenreSet::from_names(&u.genres).is_empty());
        }
        rules::password(DEMO_PASSWORD).unwrap();
        let artists: std::collections::HashSet<_> =
            people.iter().flat_map(|u| u.top_artists.clone()).collect();
        assert!(artists.len() >= 12, "mostly distinct favourites");
    }

    /// The point of the demo users: each one alone gets suggestions that
    /// fit them, and a party of all five gets something for everyone.
    #[test]
    fn demo_users_get_tailored_suggestions() {
        use crate::suggest::{self, Catalog, CatalogRow, MemberTaste, Room};
        let tracks = catalog();
        let cat = Catalog::from_rows(tracks.iter().enumerate().map(|(i, t)| CatalogRow {
            id: format!("track{i:04}"),
            spotify_id: t.input.spotify_id.clone(),
            artists: t.input.artists.clone(),
            popularity: t.input.popularity.unwrap_or(0),
            features: Some(t.features.clone()),
        }));
        let members: Vec<MemberTaste> = demo_users(&tracks)
            .iter()
            .map(|u| {
                let prefs = audotics_protocol::model::Preferences {
                    top_tracks: u.top_tracks.clone(),
                    top_artists: u.top_artists.clone(),
                    genres: u.genres.clone(),
                    features: Some(u.features.clone()),
                    last_updated: chrono::Utc::now(),
                };
                MemberTaste::from_preferences(u.email, u.name, Some(&prefs))
            })
            .collect();
        for m in &members {
            let room = Room {
                members: vec![m.clone()],
                ..Room::default()
            };
            let list = suggest::suggest(&cat, &room, 10);
            let fits = list
                .iter()
                .filter(|s| s.fits == [m.user_id.clone()])
                .count();
            assert!(fits >= 8, "{}: {list:?}", m.name);
        }
        let party = Room {
            members,
            ..Room::default()
        };
        let list = suggest::suggest(&cat, &party, 10);
        let everyone: std::collections::HashSet<&String> =
            list.iter().flat_map(|s| &s.fits).collect();
        assert!(everyone.len() >= 4, "{list:?}");
        assert!(list.iter().all(|s| !s.reason.is_empty()));
    }
}
