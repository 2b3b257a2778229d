//! The demo catalog: a few thousand generated tracks (plausible titles,
//! artists, albums, popularity and audio features) so that a newcomer can
//! search and queue music right after `audotics-hub serve --demo`.
//!
//! Generated deterministically from word lists with a seeded PRNG, so every
//! run produces the same catalog and loading it again only rewrites the same
//! rows. Every demo track is marked as demo data by its Spotify id: `demo`
//! followed by 18 letters and digits (22 characters, the length of a real
//! Spotify id), so `"spotifyId" LIKE 'demo%'` finds (or deletes) them all.

use sqlx::PgPool;

use crate::db::tracks;
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

/// Upsert the demo catalog (tracks and their features) in one transaction.
/// Idempotent: loading it again rewrites the same rows. Returns the count.
pub async fn load(pool: &PgPool) -> anyhow::Result<usize> {
    let all = catalog();
    let mut tx = pool.begin().await?;
    for t in &all {
        let (track, _) = tracks::upsert(&mut tx, &t.input).await?;
        tracks::set_features(&mut *tx, &track.id, &t.features).await?;
    }
    tx.commit().await?;
    tracing::info!(tracks = all.len(), "demo catalog loaded");
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
}
