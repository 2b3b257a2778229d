//! Synthetic catalogs and rooms with planted tastes, for the benchmark
//! (`benches/suggest.rs`), the offline evaluation (`audotics-suggest-eval`)
//! and the tests. Deterministic: the same seed gives the same data.
//!
//! A catalog is a set of clusters in feature space (a "style"), each with
//! its own artists and popularity level; a track is its cluster's centre
//! plus noise (σ 0.08 per feature). A planted taste is a point near one
//! cluster's centre plus three liked artists; its ground truth
//! ([`Planted::satisfaction`]) is a Gaussian of the distance (σ 0.15,
//! weighted like the engine's base weights) plus 0.25 for a liked artist —
//! a different shape from the engine's model on purpose, so that the
//! evaluation does not grade the engine by its own formula. What a member
//! shows the engine is only what a real member's `UserPreference` holds:
//! eight top tracks sampled from what they like, two of their three
//! artists, their genre family and, for every third member, explicit
//! ranges for three features.

use serde_json::json;

use super::catalog::{normalize, CatalogRow, FEATURES};
use super::genre;
use super::taste::{MemberTaste, BASE_WEIGHT};
use audotics_protocol::model::{Preferences, TrackFeatures};

/// SplitMix64: small, seeded, stable across versions.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u = self.unit().max(1e-7);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

/// A synthetic catalog; track `i` has id `t{i:07}`, so it is index `i` of
/// the [`super::Catalog`] built from `rows`.
pub struct SynthCatalog {
    pub rows: Vec<CatalogRow>,
    /// Normalized features per track (None: no features).
    pub features: Vec<Option<[f32; FEATURES]>>,
    pub cluster_of: Vec<u32>,
    pub centers: Vec<[f32; FEATURES]>,
    pub cluster_artists: Vec<Vec<String>>,
    pub cluster_tracks: Vec<Vec<u32>>,
}

/// The catalog's track id for index `i`.
pub fn track_id(i: usize) -> String {
    format!("t{i:07}")
}

fn raw(x: &[f32; FEATURES]) -> TrackFeatures {
    let v = |i: usize| x[i] as f64;
    TrackFeatures {
        danceability: v(0),
        energy: v(1),
        key: (v(2) * 11.0).round() as i32,
        loudness: v(3) * 25.0 - 25.0,
        mode: v(4).round() as i32,
        speechiness: v(5),
        acousticness: v(6),
        instrumentalness: v(7),
        liveness: v(8),
        valence: v(9),
        tempo: 50.0 + 150.0 * v(10),
    }
}

/// `tracks` tracks in `clusters` clusters; 2% have no features.
pub fn catalog(tracks: usize, clusters: usize, seed: u64) -> SynthCatalog {
    let mut rng = Rng::new(seed);
    let clusters = clusters.max(1);
    let centers: Vec<[f32; FEATURES]> = (0..clusters)
        .map(|_| std::array::from_fn(|_| 0.1 + 0.8 * rng.unit()))
        .collect();
    let per_cluster_artists = (tracks / (clusters * 12)).max(1);
    let cluster_artists: Vec<Vec<String>> = (0..clusters)
        .map(|c| {
            (0..per_cluster_artists)
                .map(|j| format!("Artist {c}-{j}"))
                .collect()
        })
        .collect();
    let cluster_pop: Vec<f32> = (0..clusters).map(|_| 15.0 + 60.0 * rng.unit()).collect();
    let mut out = SynthCatalog {
        rows: Vec::with_capacity(tracks),
        features: Vec::with_capacity(tracks),
        cluster_of: Vec::with_capacity(tracks),
        centers,
        cluster_artists,
        cluster_tracks: vec![Vec::new(); clusters],
    };
    for i in 0..tracks {
        let c = rng.below(clusters);
        let center = out.centers[c];
        let x: [f32; FEATURES] = std::array::from_fn(|f| {
            let v = match f {
                2 => rng.unit(),
                4 => (rng.unit() < center[4]) as u8 as f32,
                _ => center[f] + 0.08 * rng.normal(),
            };
            v.clamp(0.0, 1.0)
        });
        // Quantized as the database stores them, so x is what the catalog reads.
        let features = (rng.below(50) != 0).then(|| raw(&x));
        let x = features.as_ref().map(normalize);
        let mut artists = vec![out.cluster_artists[c][rng.below(per_cluster_artists)].clone()];
        if rng.below(10) == 0 {
            let g = rng.below(clusters);
            let guest = out.cluster_artists[g][rng.below(per_cluster_artists)].clone();
            if guest != artists[0] {
                artists.push(guest);
            }
        }
        let popularity = (cluster_pop[c] + 15.0 * rng.normal()).clamp(0.0, 100.0) as i32;
        out.rows.push(CatalogRow {
            id: track_id(i),
            spotify_id: format!("s{i:07}"),
            artists,
            popularity,
            features,
        });
        out.features.push(x);
        out.cluster_of.push(c as u32);
        out.cluster_tracks[c].push(i as u32);
    }
    out
}

/// A member's true taste.
#[derive(Clone, Debug, PartialEq)]
pub struct Planted {
    pub cluster: usize,
    pub center: [f32; FEATURES],
    pub artists: Vec<String>,
}

impl Planted {
    /// Ground-truth satisfaction with track `i` of `synth`, in 0..1 (a
    /// track without features: 0.3, a shrug).
    pub fn satisfaction(&self, synth: &SynthCatalog, i: usize) -> f32 {
        let base = match &synth.features[i] {
            Some(x) => {
                let (mut d2, mut w) = (0.0, 0.0);
                for f in 0..FEATURES {
                    d2 += BASE_WEIGHT[f] * (x[f] - self.center[f]).powi(2);
                    w += BASE_WEIGHT[f];
                }
                (-(d2 / w) / (2.0 * 0.15f32.powi(2))).exp()
            }
            None => 0.3,
        };
        let liked = synth.rows[i]
            .artists
            .iter()
            .any(|a| self.artists.contains(a));
        (base + if liked { 0.25 } else { 0.0 }).min(1.0)
    }
}

/// A room of `members` over `synth`: members split evenly over `camps`
/// clusters, except the last, a guest from yet another cluster (when
/// `guest`). Returns what the engine sees and the planted truth.
pub fn room(
    synth: &SynthCatalog,
    members: usize,
    camps: usize,
    guest: bool,
    seed: u64,
) -> (Vec<MemberTaste>, Vec<Planted>) {
    let mut rng = Rng::new(seed);
    let k = synth.centers.len();
    let mut clusters: Vec<usize> = Vec::new();
    while clusters.len() < (camps + guest as usize).min(k) {
        let c = rng.below(k);
        if !clusters.contains(&c) {
            clusters.push(c);
        }
    }
    let camps = clusters.len() - (guest && clusters.len() > 1) as usize;
    let mut tastes = Vec::with_capacity(members);
    let mut planted = Vec::with_capacity(members);
    for m in 0..members {
        let c = if guest && m + 1 == members && clusters.len() > camps {
            clusters[camps]
        } else {
            clusters[m % camps.max(1)]
        };
        let center: [f32; FEATURES] =
            std::array::from_fn(|f| (synth.centers[c][f] + 0.04 * rng.normal()).clamp(0.0, 1.0));
        let pool = &synth.cluster_artists[c];
        let mut artists: Vec<String> = Vec::new();
        for _ in 0..6 {
            let a = pool[rng.below(pool.len())].clone();
            if artists.len() < 3 && !artists.contains(&a) {
                artists.push(a);
            }
        }
        let p = Planted {
            cluster: c,
            center,
            artists,
        };
        let members_tracks = &synth.cluster_tracks[c];
        let mut top = Vec::new();
        for _ in 0..200 {
            if top.len() == 8 || members_tracks.is_empty() {
                break;
            }
            let i = members_tracks[rng.below(members_tracks.len())] as usize;
            if p.satisfaction(synth, i) >= 0.6 && !top.contains(&synth.rows[i].spotify_id) {
                top.push(synth.rows[i].spotify_id.clone());
            }
        }
        let features = (m % 3 == 2).then(|| {
            let range = |v: f32| json!({ "min": (v - 0.1).max(0.0), "max": (v + 0.1).min(1.0) });
            json!({
                "energy": range(center[1]),
                "danceability": range(center[0]),
                "valence": range(center[9]),
            })
        });
        let prefs = Preferences {
            top_tracks: top,
            top_artists: p.artists[..p.artists.len().min(2)].to_vec(),
            genres: vec![genre::of_features(&center).label().to_owned()],
            features,
            last_updated: chrono::DateTime::UNIX_EPOCH,
        };
        let name = format!("Member {}", m + 1);
        tastes.push(MemberTaste::from_preferences(
            format!("u{m}"),
            name,
            Some(&prefs),
        ));
        planted.push(p);
    }
    (tastes, planted)
}

/// The skip scenario's victims: of `candidates` (track indexes, best
/// first), the `k` with the highest energy, at most one per cluster, so
/// that what they share is their energy rather than a style.
pub fn loudest_distinct(synth: &SynthCatalog, candidates: &[usize], k: usize) -> Vec<usize> {
    let mut by_energy: Vec<(f32, usize)> = candidates
        .iter()
        .filter_map(|&i| synth.features[i].map(|x| (x[1], i)))
        .collect();
    by_energy.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut out: Vec<usize> = Vec::with_capacity(k);
    for (_, i) in by_energy {
        if out.len() < k
            && out
                .iter()
                .all(|o| synth.cluster_of[*o] != synth.cluster_of[i])
        {
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_indexed_like_the_catalog() {
        let a = catalog(2_000, 8, 7);
        let b = catalog(2_000, 8, 7);
        assert_eq!(a.rows, b.rows);
        let cat = super::super::Catalog::from_rows(a.rows.clone());
        for i in [0, 999, 1_999] {
            assert_eq!(cat.index_of(&track_id(i)).unwrap().get(), i);
            assert_eq!(cat.features(super::super::TrackIx(i as u32)), a.features[i]);
        }
        let (t1, p1) = room(&a, 6, 2, true, 3);
        let (t2, p2) = room(&a, 6, 2, true, 3);
        assert_eq!((t1.clone(), p1.clone()), (t2, p2));
        assert_eq!(t1.len(), 6);
        assert!(t1.iter().all(|m| m.has_preferences()));
        let guest = p1.last().unwrap().cluster;
        assert!(p1[..5].iter().all(|p| p.cluster != guest));
        // Top tracks are ones the member truly likes.
        let i: usize = t1[0].top_tracks[0][1..].parse().unwrap();
        assert!(p1[0].satisfaction(&a, i) >= 0.6);
    }
}
