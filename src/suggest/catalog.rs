//! The catalog in memory, laid out for the scoring loop.
//!
//! A recompute scores every track for every member present, so the catalog
//! is held as a struct of arrays: one `f32` column per audio feature
//! (normalized to 0..1), popularity, a "has features" mask and a genre
//! family per track, each padded to a whole number of [`BLOCK`]s so the
//! scan reads fixed-size slices that the compiler vectorizes. Track ids are
//! kept sorted (a track's index is its rank), artists are interned to ids.
//!
//! Normalization: the seven 0..1 features as they are; loudness maps −25 dB
//! → 0 and 0 dB → 1 (nearly all music sits in −25..0; Spotify's documented
//! range is −60..0); tempo maps 50 → 0 and 200 BPM → 1; key is pitch class
//! / 11 (it carries no default weight: taste is rarely about key); mode is
//! 0 (minor) or 1 (major). Values outside are clamped.
//!
//! A track without `"TrackFeatures"` keeps zeros, mask 0 and no genre: the
//! engine can only suggest it for its popularity and artists.
//!
//! [`Catalog::load`] reads `"Track"` joined with `"TrackFeatures"`;
//! [`SharedCatalog`] holds the current one for the hub and reloads it when
//! [`CatalogStamp`] (counts and last update times of both tables) changes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::NaiveDateTime;
use futures::TryStreamExt;
use sqlx::PgPool;

use super::genre::{self, Genre, NO_GENRE};
use crate::error::Result;
use audotics_protocol::model::TrackFeatures;

/// How many audio features a track has.
pub const FEATURES: usize = 11;

/// Tracks per block of the scan; columns are padded to a multiple of it.
pub const BLOCK: usize = 64;

/// The features in column order (the order of `"TrackFeatures"`).
pub const FEATURE_NAMES: [&str; FEATURES] = [
    "danceability",
    "energy",
    "key",
    "loudness",
    "mode",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
];

/// Column indexes, by feature.
pub mod f {
    pub const DANCE: usize = 0;
    pub const ENERGY: usize = 1;
    pub const KEY: usize = 2;
    pub const LOUD: usize = 3;
    pub const MODE: usize = 4;
    pub const SPEECH: usize = 5;
    pub const ACOUSTIC: usize = 6;
    pub const INSTR: usize = 7;
    pub const LIVE: usize = 8;
    pub const VALENCE: usize = 9;
    pub const TEMPO: usize = 10;
}

/// The column of a feature named as in `"TrackFeatures"`.
pub fn feature_index(name: &str) -> Option<usize> {
    FEATURE_NAMES.iter().position(|n| *n == name)
}

/// One raw feature value (loudness in dB, tempo in BPM, key 0–11, the rest
/// 0..1) normalized as the module doc says.
pub fn normalize_one(feature: usize, raw: f64) -> f32 {
    let v = match feature {
        f::LOUD => (raw + 25.0) / 25.0,
        f::TEMPO => (raw - 50.0) / 150.0,
        f::KEY => raw / 11.0,
        _ => raw,
    };
    if v.is_nan() {
        0.0
    } else {
        v.clamp(0.0, 1.0) as f32
    }
}

/// All eleven features of a track, normalized.
pub fn normalize(t: &TrackFeatures) -> [f32; FEATURES] {
    let raw = [
        t.danceability,
        t.energy,
        t.key as f64,
        t.loudness,
        t.mode as f64,
        t.speechiness,
        t.acousticness,
        t.instrumentalness,
        t.liveness,
        t.valence,
        t.tempo,
    ];
    std::array::from_fn(|i| normalize_one(i, raw[i]))
}

/// A track's position in a [`Catalog`] (its rank by track id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrackIx(pub u32);

impl TrackIx {
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// An interned artist of a [`Catalog`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArtistId(pub u32);

/// One track as the catalog is built from it.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogRow {
    /// `"Track"."id"`: what queues, interactions and suggestions name.
    pub id: String,
    pub spotify_id: String,
    pub artists: Vec<String>,
    /// 0–100.
    pub popularity: i32,
    pub features: Option<TrackFeatures>,
}

/// The whole catalog in memory; immutable once built.
pub struct Catalog {
    ids: Vec<Box<str>>,
    spotify_ids: Vec<Box<str>>,
    /// Track indexes ordered by Spotify id, for `topTracks`.
    by_spotify: Vec<u32>,
    cols: [Vec<f32>; FEATURES],
    /// 1.0 where the track has features, else 0.0 (padding: 0.0).
    known: Vec<f32>,
    /// popularity / 100.
    popularity: Vec<f32>,
    /// A [`Genre`] index, or [`NO_GENRE`].
    genre: Vec<u8>,
    /// The same as `f32`, for the scan's compare-and-select.
    genre_f32: Vec<f32>,
    artist_start: Vec<u32>,
    artist_list: Vec<u32>,
    artist_names: Vec<Box<str>>,
    /// Lower-cased, trimmed name → id.
    artist_index: HashMap<Box<str>, u32>,
    mean: [f32; FEATURES],
    std: [f32; FEATURES],
}

impl Catalog {
    /// Build from rows in any order; of rows with the same id the last wins.
    pub fn from_rows(rows: impl IntoIterator<Item = CatalogRow>) -> Catalog {
        let mut rows: Vec<CatalogRow> = rows.into_iter().collect();
        rows.reverse();
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        rows.dedup_by(|a, b| a.id == b.id);
        let n = rows.len();
        let padded = n.div_ceil(BLOCK) * BLOCK;
        let mut cat = Catalog {
            ids: Vec::with_capacity(n),
            spotify_ids: Vec::with_capacity(n),
            by_spotify: Vec::new(),
            cols: std::array::from_fn(|_| Vec::with_capacity(padded)),
            known: Vec::with_capacity(padded),
            popularity: Vec::with_capacity(padded),
            genre: Vec::with_capacity(padded),
            genre_f32: Vec::new(),
            artist_start: Vec::with_capacity(n + 1),
            artist_list: Vec::with_capacity(n + n / 4),
            artist_names: Vec::new(),
            artist_index: HashMap::new(),
            mean: [0.0; FEATURES],
            std: [0.0; FEATURES],
        };
        let mut sum = [0f64; FEATURES];
        let mut sq = [0f64; FEATURES];
        let mut with_features = 0usize;
        cat.artist_start.push(0);
        for row in rows {
            cat.ids.push(row.id.into_boxed_str());
            cat.spotify_ids.push(row.spotify_id.into_boxed_str());
            cat.popularity
                .push(row.popularity.clamp(0, 100) as f32 / 100.0);
            match &row.features {
                Some(raw) => {
                    let x = normalize(raw);
                    for (i, v) in x.iter().enumerate() {
                        cat.cols[i].push(*v);
                        sum[i] += *v as f64;
                        sq[i] += (*v as f64).powi(2);
                    }
                    cat.known.push(1.0);
                    cat.genre.push(genre::of_features(&x).index());
                    with_features += 1;
                }
                None => {
                    for col in &mut cat.cols {
                        col.push(0.0);
                    }
                    cat.known.push(0.0);
                    cat.genre.push(NO_GENRE);
                }
            }
            for name in &row.artists {
                let id = cat.intern(name);
                cat.artist_list.push(id);
            }
            cat.artist_start.push(cat.artist_list.len() as u32);
        }
        for col in &mut cat.cols {
            col.resize(padded, 0.0);
        }
        cat.known.resize(padded, 0.0);
        cat.popularity.resize(padded, 0.0);
        cat.genre.resize(padded, NO_GENRE);
        cat.genre_f32 = cat.genre.iter().map(|g| *g as f32).collect();
        let mut by_spotify: Vec<u32> = (0..n as u32).collect();
        by_spotify.sort_by(|a, b| cat.spotify_ids[*a as usize].cmp(&cat.spotify_ids[*b as usize]));
        cat.by_spotify = by_spotify;
        if with_features > 0 {
            let k = with_features as f64;
            for i in 0..FEATURES {
                let mean = sum[i] / k;
                cat.mean[i] = mean as f32;
                cat.std[i] = (sq[i] / k - mean * mean).max(0.0).sqrt() as f32;
            }
        }
        cat
    }

    fn intern(&mut self, name: &str) -> u32 {
        let key = artist_key(name);
        if let Some(id) = self.artist_index.get(key.as_str()) {
            return *id;
        }
        let id = self.artist_names.len() as u32;
        self.artist_names.push(name.trim().into());
        self.artist_index.insert(key.into_boxed_str(), id);
        id
    }

    /// Read every track with its features (if any) from Postgres. Streams
    /// the rows; building takes about a second per million tracks.
    pub async fn load(pool: &PgPool) -> Result<Catalog> {
        #[derive(sqlx::FromRow)]
        #[sqlx(rename_all = "camelCase")]
        struct Row {
            id: String,
            spotify_id: String,
            artists: Option<Vec<String>>,
            popularity: i32,
            danceability: Option<f64>,
            energy: Option<f64>,
            key: Option<i32>,
            loudness: Option<f64>,
            mode: Option<i32>,
            speechiness: Option<f64>,
            acousticness: Option<f64>,
            instrumentalness: Option<f64>,
            liveness: Option<f64>,
            valence: Option<f64>,
            tempo: Option<f64>,
        }
        let mut stream = sqlx::query_as::<_, Row>(
            r#"SELECT t."id", t."spotifyId", t."artists", t."popularity",
                      f."danceability", f."energy", f."key", f."loudness", f."mode",
                      f."speechiness", f."acousticness", f."instrumentalness",
                      f."liveness", f."valence", f."tempo"
               FROM "Track" t LEFT JOIN "TrackFeatures" f ON f."trackId" = t."id""#,
        )
        .fetch(pool);
        let mut rows = Vec::new();
        while let Some(r) = stream.try_next().await? {
            // The LEFT JOIN gives all feature columns or none (they are NOT NULL).
            let features = match (
                r.danceability,
                r.energy,
                r.key,
                r.loudness,
                r.mode,
                r.speechiness,
                r.acousticness,
                r.instrumentalness,
                r.liveness,
                r.valence,
                r.tempo,
            ) {
                (
                    Some(danceability),
                    Some(energy),
                    Some(key),
                    Some(loudness),
                    Some(mode),
                    Some(speechiness),
                    Some(acousticness),
                    Some(instrumentalness),
                    Some(liveness),
                    Some(valence),
                    Some(tempo),
                ) => Some(TrackFeatures {
                    danceability,
                    energy,
                    key,
                    loudness,
                    mode,
                    speechiness,
                    acousticness,
                    instrumentalness,
                    liveness,
                    valence,
                    tempo,
                }),
                _ => None,
            };
            rows.push(CatalogRow {
                id: r.id,
                spotify_id: r.spotify_id,
                artists: r.artists.unwrap_or_default(),
                popularity: r.popularity,
                features,
            });
        }
        let n = rows.len();
        let cat = tokio::task::spawn_blocking(move || Catalog::from_rows(rows))
            .await
            .map_err(|e| crate::error::Error::Internal(e.into()))?;
        tracing::info!(tracks = n, "suggestion catalog loaded");
        Ok(cat)
    }

    /// How many tracks.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Length of the padded columns (a multiple of [`BLOCK`]).
    pub fn padded_len(&self) -> usize {
        self.known.len()
    }

    /// The index of the track with this `"Track"."id"`.
    pub fn index_of(&self, track_id: &str) -> Option<TrackIx> {
        self.ids
            .binary_search_by(|id| id.as_ref().cmp(track_id))
            .ok()
            .map(|i| TrackIx(i as u32))
    }

    /// The index of the track with this Spotify id.
    pub fn index_of_spotify(&self, spotify_id: &str) -> Option<TrackIx> {
        self.by_spotify
            .binary_search_by(|i| self.spotify_ids[*i as usize].as_ref().cmp(spotify_id))
            .ok()
            .map(|p| TrackIx(self.by_spotify[p]))
    }

    pub fn track_id(&self, t: TrackIx) -> &str {
        &self.ids[t.get()]
    }

    pub fn spotify_id(&self, t: TrackIx) -> &str {
        &self.spotify_ids[t.get()]
    }

    /// The normalized features, if the track has any.
    pub fn features(&self, t: TrackIx) -> Option<[f32; FEATURES]> {
        self.has_features(t)
            .then(|| std::array::from_fn(|i| self.cols[i][t.get()]))
    }

    pub fn has_features(&self, t: TrackIx) -> bool {
        self.known[t.get()] != 0.0
    }

    /// Popularity in 0..1.
    pub fn popularity(&self, t: TrackIx) -> f32 {
        self.popularity[t.get()]
    }

    pub fn genre(&self, t: TrackIx) -> Option<Genre> {
        Genre::from_index(self.genre[t.get()])
    }

    pub fn artists(&self, t: TrackIx) -> impl ExactSizeIterator<Item = ArtistId> + '_ {
        self.artist_ids(t.get()).iter().map(|a| ArtistId(*a))
    }

    pub(crate) fn artist_ids(&self, t: usize) -> &[u32] {
        &self.artist_list[self.artist_start[t] as usize..self.artist_start[t + 1] as usize]
    }

    /// The artist with this name (case and surrounding space ignored).
    pub fn artist_id(&self, name: &str) -> Option<ArtistId> {
        self.artist_index
            .get(artist_key(name).as_str())
            .map(|i| ArtistId(*i))
    }

    pub fn artist_name(&self, a: ArtistId) -> &str {
        &self.artist_names[a.0 as usize]
    }

    pub fn artist_count(&self) -> usize {
        self.artist_names.len()
    }

    /// Mean and standard deviation of each normalized feature over the
    /// tracks that have features (what "energetic" is relative to).
    pub fn feature_stats(&self) -> ([f32; FEATURES], [f32; FEATURES]) {
        (self.mean, self.std)
    }

    pub(crate) fn column(&self, feature: usize) -> &[f32] {
        &self.cols[feature]
    }

    pub(crate) fn known_column(&self) -> &[f32] {
        &self.known
    }

    pub(crate) fn popularity_column(&self) -> &[f32] {
        &self.popularity
    }

    pub(crate) fn genre_column(&self) -> &[u8] {
        &self.genre
    }

    pub(crate) fn genre_f32_column(&self) -> &[f32] {
        &self.genre_f32
    }
}

fn artist_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// What changes when the catalog does: both tables' row counts and latest
/// `"updatedAt"`. A track written by the hub or the old app moves one.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct CatalogStamp {
    tracks: i64,
    tracks_updated: Option<NaiveDateTime>,
    features: i64,
    features_updated: Option<NaiveDateTime>,
}

impl CatalogStamp {
    pub async fn read(pool: &PgPool) -> Result<CatalogStamp> {
        Ok(sqlx::query_as(
            r#"SELECT (SELECT count(*) FROM "Track") AS tracks,
                      (SELECT max("updatedAt") FROM "Track") AS tracks_updated,
                      (SELECT count(*) FROM "TrackFeatures") AS features,
                      (SELECT max("updatedAt") FROM "TrackFeatures") AS features_updated"#,
        )
        .fetch_one(pool)
        .await?)
    }
}

/// The hub's current catalog: readers take an `Arc` (cheap, never blocks a
/// reload); [`SharedCatalog::refresh`] swaps in a fresh one when the tables
/// changed. No lock is held across an `.await`.
pub struct SharedCatalog {
    current: RwLock<(Arc<Catalog>, Option<CatalogStamp>)>,
}

impl SharedCatalog {
    pub fn new(catalog: Catalog) -> SharedCatalog {
        SharedCatalog {
            current: RwLock::new((Arc::new(catalog), None)),
        }
    }

    /// The catalog as of the last load.
    pub fn get(&self) -> Arc<Catalog> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// Reload from Postgres if the stamp moved since the last load; true
    /// when a new catalog was swapped in. Two concurrent refreshes may both
    /// load; the later swap wins, and both are correct.
    pub async fn refresh(&self, pool: &PgPool) -> Result<bool> {
        let stamp = CatalogStamp::read(pool).await?;
        let same = {
            let cur = self.current.read().unwrap_or_else(|e| e.into_inner());
            cur.1.as_ref() == Some(&stamp)
        };
        if same {
            return Ok(false);
        }
        let catalog = Arc::new(Catalog::load(pool).await?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = (catalog, Some(stamp));
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feats(energy: f64, loudness: f64, tempo: f64) -> TrackFeatures {
        TrackFeatures {
            danceability: 0.5,
            energy,
            key: 11,
            loudness,
            mode: 1,
            speechiness: 0.1,
            acousticness: 0.2,
            instrumentalness: 0.0,
            liveness: 0.1,
            valence: 0.5,
            tempo,
        }
    }

    fn row(id: &str, sp: &str, artists: &[&str], features: Option<TrackFeatures>) -> CatalogRow {
        CatalogRow {
            id: id.into(),
            spotify_id: sp.into(),
            artists: artists.iter().map(|a| a.to_string()).collect(),
            popularity: 40,
            features,
        }
    }

    #[test]
    fn normalizes_and_clamps() {
        let x = normalize(&feats(0.7, -12.5, 125.0));
        assert_eq!(x[f::ENERGY], 0.7);
        assert_eq!(x[f::LOUD], 0.5);
        assert_eq!(x[f::TEMPO], 0.5);
        assert_eq!(x[f::KEY], 1.0);
        assert_eq!(x[f::MODE], 1.0);
        let x = normalize(&feats(1.5, -60.0, 300.0));
        assert_eq!((x[f::ENERGY], x[f::LOUD], x[f::TEMPO]), (1.0, 0.0, 1.0));
        assert_eq!(normalize_one(f::ENERGY, f64::NAN), 0.0);
        assert_eq!(feature_index("tempo"), Some(f::TEMPO));
    }

    #[test]
    fn builds_sorted_padded_columns_with_interned_artists() {
        let cat = Catalog::from_rows([
            row("t3", "s1", &["Ana", "Ben"], Some(feats(0.9, -5.0, 120.0))),
            row("t1", "s3", &[" ana "], None),
            row("t2", "s2", &["Cy"], Some(feats(0.1, -20.0, 80.0))),
            row("t1", "s9", &["Cy"], Some(feats(0.5, -10.0, 100.0))),
        ]);
        assert_eq!(cat.len(), 3);
        assert_eq!(cat.padded_len(), BLOCK);
        assert_eq!(cat.index_of("t1"), Some(TrackIx(0)));
        assert_eq!(cat.index_of("t3"), Some(TrackIx(2)));
        assert_eq!(cat.index_of("t0"), None);
        // The last row with id t1 won.
        assert_eq!(cat.spotify_id(TrackIx(0)), "s9");
        assert_eq!(cat.index_of_spotify("s1"), Some(TrackIx(2)));
        assert_eq!(cat.index_of_spotify("s3"), None);
        let ana = cat.artist_id("ANA").unwrap();
        assert_eq!(cat.artist_name(ana), "Ana");
        assert_eq!(cat.artists(TrackIx(2)).collect::<Vec<_>>()[0], ana);
        assert_eq!(cat.artist_count(), 3);
        assert!(cat.features(TrackIx(1)).is_some());
        assert!(cat.genre(TrackIx(1)).is_some());
        assert_eq!(cat.popularity(TrackIx(1)), 0.4);
        assert_eq!(cat.known_column()[3..], [0.0; BLOCK - 3]);
        assert_eq!(cat.genre_column()[3], NO_GENRE);
    }

    #[test]
    fn a_track_without_features_has_none() {
        let cat = Catalog::from_rows([row("a", "s", &[], None)]);
        assert_eq!(cat.features(TrackIx(0)), None);
        assert_eq!(cat.genre(TrackIx(0)), None);
        assert_eq!(cat.feature_stats(), ([0.0; FEATURES], [0.0; FEATURES]));
    }
}
