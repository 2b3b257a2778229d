//! A member's taste, and how sure the engine is of it.
//!
//! [`MemberTaste`] is what the hub knows about a member without the
//! catalog: their `UserPreference` parsed once when they join (feature
//! targets or ranges, top tracks, top artists, genre families). Each
//! recompute resolves it against the current catalog and the session's
//! [`Reaction`]s into a [`Model`]: a predicted satisfaction in 0..1 for any
//! track,
//!
//! `s = 0.8·κ·fit + 0.5·(1 − κ) + 0.1·popularity + genre + artist + ρ·room`
//!
//! clamped to 0..1, where
//! - `fit` is 1 at the member's feature target and falls with the squared
//!   distance outside their range, to 0 at [`FIT_RADIUS`]: the weighted
//!   mean over all features for a taste learnt from tracks, the sum over
//!   the features they stated for explicit targets (each stated range is a
//!   constraint of its own);
//!   a track without features gets the member's mean fit over the catalog
//!   (as good as a random track: we know nothing better, and a room must
//!   not fill up with unknowns because they are never vetoed);
//! - `κ` is the confidence in the feature taste: 1 for explicit targets,
//!   else `W / (W + 2)` for `W` tracks of evidence (top tracks, own liked
//!   tracks), so about three tracks are needed before a far-off track can
//!   fall below the misery threshold on fit alone; with no feature taste
//!   `κ = 0` and the member is neutral (0.5) about sound;
//! - `genre` is +0.1 for a track in one of the member's genre families;
//! - `artist` is +0.3 for a top artist, +0.15 for the artist of a track the
//!   member liked tonight, −0.15 for one they skipped, −0.6 for one they
//!   disliked (enough to veto);
//! - `room` is the session's reactions by anyone ([`RoomProfile`]), weight
//!   `ρ` = 0.35. It moves the ranking for everyone but never vetoes on its
//!   own: misery is judged on the member's own part (everything but `room`).
//!
//! Cold start, in order: a member with preferences or own reactions is
//! modelled as above; with neither, while the room has reactions, their
//! satisfaction is the room's (`0.3 + 0.1·popularity + 0.5·room`); with no
//! reactions at all, popularity within the room's genre families
//! (`0.3 + 0.3·popularity + 0.15` in a room genre). Cold members never veto.
//!
//! Reaction weights keep the old app's order (like > add > play > 0 > skip >
//! dislike): like and save 1, add_to_playlist and share 0.75, play 0.25
//! (in a room every track plays, whoever chose it), skip −0.6, dislike −1;
//! each halves every [`REACTION_HALF_LIFE_MS`].

use serde_json::Value;

use super::catalog::{feature_index, normalize_one, Catalog, TrackIx, FEATURES};
use super::genre::{GenreSet, GENRE_SLOTS};
use audotics_protocol::model::Preferences;

/// Weighted RMS distance outside a member's range at which fit reaches 0:
/// a quarter of the scale on every feature that describes the taste is
/// another style. (On the evaluation's tuning seed, 0.25 served the least
/// happy member better than 0.3, with less misery.)
pub const FIT_RADIUS: f32 = 0.25;
/// The same for the room's reaction prototypes.
pub const ROOM_RADIUS: f32 = 0.25;
/// How many tracks (evenly spaced) estimate a member's fit with a track
/// whose features are unknown: their mean fit over the catalog.
const UNKNOWN_FIT_SAMPLE: usize = 256;
/// A reaction's weight halves every 20 minutes (about five tracks).
pub const REACTION_HALF_LIFE_MS: f64 = 20.0 * 60_000.0;

const W_FIT: f32 = 0.8;
const NEUTRAL: f32 = 0.5;
const W_POP: f32 = 0.1;
const GENRE_BONUS: f32 = 0.1;
const ROOM_WEIGHT: f32 = 0.35;
const TOP_ARTIST: f32 = 0.3;
const LIKED_ARTIST: f32 = 0.15;
const SKIPPED_ARTIST: f32 = -0.15;
const DISLIKED_ARTIST: f32 = -0.6;
const COLD_ROOM_BASE: f32 = 0.3;
const COLD_ROOM_WEIGHT: f32 = 0.5;
const COLD_POP_BASE: f32 = 0.3;
const COLD_POP_WEIGHT: f32 = 0.3;
const COLD_GENRE_BONUS: f32 = 0.15;
/// How far own liked tracks pull explicit targets, at full confidence.
const ROCCHIO_PULL: f32 = 0.5;

/// How much each feature counts in a distance: the ones that describe a
/// taste most (energy, mood, danceability, acoustic vs electronic) fully;
/// loudness and tempo half (loudness follows energy); liveness and mode a
/// quarter; key not at all unless a member asks for it.
pub const BASE_WEIGHT: [f32; FEATURES] =
    [1.0, 1.0, 0.0, 0.5, 0.25, 0.75, 1.0, 0.75, 0.25, 1.0, 0.5];

/// One feature of a member's explicit preference, normalized: a target
/// (`half` = 0) or a range `center ± half`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Target {
    pub feature: usize,
    pub center: f32,
    pub half: f32,
}

/// What the hub knows about one member present, independent of the catalog.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberTaste {
    pub user_id: String,
    /// Display name, for reasons ("a favourite artist of Ana").
    pub name: String,
    pub targets: Vec<Target>,
    /// Spotify ids (`UserPreference.topTracks`).
    pub top_tracks: Vec<String>,
    /// Artist names as `"Track"."artists"` spells them; anything else (a
    /// Spotify artist id) matches no track and is ignored.
    pub top_artists: Vec<String>,
    pub genres: GenreSet,
}

impl MemberTaste {
    /// A member with no preferences (cold start).
    pub fn new(user_id: impl Into<String>, name: impl Into<String>) -> MemberTaste {
        MemberTaste {
            user_id: user_id.into(),
            name: name.into(),
            targets: Vec::new(),
            top_tracks: Vec::new(),
            top_artists: Vec::new(),
            genres: GenreSet::default(),
        }
    }

    /// A member from their `UserPreference` (None: cold start).
    pub fn from_preferences(
        user_id: impl Into<String>,
        name: impl Into<String>,
        prefs: Option<&Preferences>,
    ) -> MemberTaste {
        let mut m = MemberTaste::new(user_id, name);
        if let Some(p) = prefs {
            m.targets = p.features.as_ref().map(parse_features).unwrap_or_default();
            m.top_tracks = p.top_tracks.clone();
            m.top_artists = p.top_artists.clone();
            m.genres = GenreSet::from_names(&p.genres);
        }
        m
    }

    /// Has the member stated any preference at all?
    pub fn has_preferences(&self) -> bool {
        !self.targets.is_empty()
            || !self.top_tracks.is_empty()
            || !self.top_artists.is_empty()
            || !self.genres.is_empty()
    }
}

/// Feature preferences from `UserPreference.features`. Per feature name (as
/// in `"TrackFeatures"`), any of:
/// - a number: a target (`"energy": 0.8`, `"tempo": 120`);
/// - `{"min": a, "max": b}` (either may be missing: the scale's end), or
///   `{"target": x}`;
/// - Spotify's flat recommendation form: `min_energy`, `max_energy`,
///   `target_energy`.
///
/// Loudness is in dB, tempo in BPM, key 0–11, the rest 0..1, as Spotify
/// gives them; anything else (unknown names, strings, `"moods"`) is ignored.
pub fn parse_features(v: &Value) -> Vec<Target> {
    let Some(obj) = v.as_object() else {
        return Vec::new();
    };
    let mut lo: [Option<f64>; FEATURES] = [None; FEATURES];
    let mut hi = lo;
    let mut target = lo;
    for (key, val) in obj {
        let (name, slot) = match key.split_once('_') {
            Some(("min", n)) => (n, Some(&mut lo)),
            Some(("max", n)) => (n, Some(&mut hi)),
            Some(("target", n)) => (n, Some(&mut target)),
            _ => (key.as_str(), None),
        };
        let Some(i) = feature_index(name) else {
            continue;
        };
        match (slot, val) {
            (Some(slot), Value::Number(n)) => slot[i] = n.as_f64(),
            (Some(_), _) => {}
            (None, Value::Number(n)) => target[i] = n.as_f64(),
            (None, Value::Object(o)) => {
                let num = |k: &str| o.get(k).and_then(Value::as_f64);
                lo[i] = num("min").or(lo[i]);
                hi[i] = num("max").or(hi[i]);
                target[i] = num("target").or(target[i]);
            }
            (None, _) => {}
        }
    }
    let mut out = Vec::new();
    for i in 0..FEATURES {
        let t = if let Some(x) = target[i] {
            let c = normalize_one(i, x);
            Target {
                feature: i,
                center: c,
                half: 0.0,
            }
        } else if lo[i].is_some() || hi[i].is_some() {
            let a = lo[i].map_or(0.0, |x| normalize_one(i, x));
            let b = hi[i].map_or(1.0, |x| normalize_one(i, x));
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            Target {
                feature: i,
                center: (a + b) / 2.0,
                half: (b - a) / 2.0,
            }
        } else {
            continue;
        };
        out.push(t);
    }
    out
}

/// An interaction kind (`TrackInteraction.type`, the protocol's
/// `interaction.kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReactionKind {
    Play,
    Skip,
    Like,
    Dislike,
    Save,
    Share,
    AddToPlaylist,
}

impl ReactionKind {
    pub fn parse(kind: &str) -> Option<ReactionKind> {
        Some(match kind {
            "play" => ReactionKind::Play,
            "skip" => ReactionKind::Skip,
            "like" => ReactionKind::Like,
            "dislike" => ReactionKind::Dislike,
            "save" => ReactionKind::Save,
            "share" => ReactionKind::Share,
            "add_to_playlist" => ReactionKind::AddToPlaylist,
            _ => return None,
        })
    }

    /// Signed strength (see the module doc).
    pub fn weight(self) -> f32 {
        match self {
            ReactionKind::Like | ReactionKind::Save => 1.0,
            ReactionKind::AddToPlaylist | ReactionKind::Share => 0.75,
            ReactionKind::Play => 0.25,
            ReactionKind::Skip => -0.6,
            ReactionKind::Dislike => -1.0,
        }
    }

    /// The per-member artist adjustment this reaction implies.
    fn artist_delta(self) -> f32 {
        match self {
            ReactionKind::Dislike => DISLIKED_ARTIST,
            ReactionKind::Skip => SKIPPED_ARTIST,
            ReactionKind::Play => 0.0,
            _ => LIKED_ARTIST,
        }
    }
}

/// One reaction in the session, by anyone (present or not).
#[derive(Clone, Debug, PartialEq)]
pub struct Reaction {
    pub user_id: String,
    /// `"Track"."id"`.
    pub track_id: String,
    pub kind: ReactionKind,
    /// When, in ms since the epoch (the engine compares it to `Room::now_ms`).
    pub at_ms: i64,
}

impl Reaction {
    /// Its weight now: signed strength halved per half-life of age.
    pub fn weight_at(&self, now_ms: i64) -> f32 {
        let age = (now_ms - self.at_ms).max(0) as f64;
        self.kind.weight() * 0.5f64.powf(age / REACTION_HALF_LIFE_MS) as f32
    }
}

/// One weighted distance term of a taste or prototype.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Term {
    pub feature: usize,
    pub center: f32,
    pub half: f32,
    pub weight: f32,
}

/// `Σ w·max(0, |x − c| − h)²`: the weighted squared distance outside the
/// ranges (a mean for a taste from tracks, whose weights sum to 1; a sum
/// over the features a member stated).
#[inline]
pub(crate) fn distance2(terms: &[Term], x: &[f32; FEATURES]) -> f32 {
    let mut acc = 0.0;
    for t in terms {
        let d = fmax((x[t.feature] - t.center).abs() - t.half, 0.0);
        acc += t.weight * d * d;
    }
    acc
}

/// 1 inside the range, 0 from `radius` out (`inv_r2` = 1 / radius²).
#[inline]
pub(crate) fn kernel(d2: f32, inv_r2: f32) -> f32 {
    fmax(1.0 - d2 * inv_r2, 0.0)
}

/// `max` that compiles to one vector instruction (no NaN handling: the
/// inputs are finite).
#[inline(always)]
pub(crate) fn fmax(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

#[inline(always)]
pub(crate) fn clamp01(v: f32) -> f32 {
    let v = fmax(v, 0.0);
    if v < 1.0 {
        v
    } else {
        1.0
    }
}

/// Terms of the weighted centroid of `evidence` (normalized features,
/// weight > 0): centre the mean, range ±0.5 standard deviations (at most
/// 0.2), weight the base weight over (variance + 0.02), so features the
/// evidence agrees on count most.
fn centroid_terms(evidence: &[([f32; FEATURES], f32)]) -> Vec<Term> {
    let total: f32 = evidence.iter().map(|e| e.1).sum();
    if evidence.is_empty() || total <= 0.0 {
        return Vec::new();
    }
    let mut terms = Vec::with_capacity(FEATURES);
    for i in 0..FEATURES {
        if BASE_WEIGHT[i] == 0.0 {
            continue;
        }
        let mean = evidence.iter().map(|(x, w)| x[i] * w).sum::<f32>() / total;
        let var = evidence
            .iter()
            .map(|(x, w)| w * (x[i] - mean).powi(2))
            .sum::<f32>()
            / total;
        terms.push(Term {
            feature: i,
            center: mean,
            half: (0.5 * var.sqrt()).min(0.2),
            weight: BASE_WEIGHT[i] / (var + 0.02),
        });
    }
    normalize_weights(&mut terms);
    terms
}

fn normalize_weights(terms: &mut [Term]) {
    let sum: f32 = terms.iter().map(|t| t.weight).sum();
    if sum > 0.0 {
        for t in terms {
            t.weight /= sum;
        }
    }
}

/// A prototype of the room's positive or negative reactions.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Proto {
    pub terms: Vec<Term>,
    /// Confidence `W / (W + 1)` for total reaction weight `W`.
    pub scale: f32,
}

/// What the session's reactions say about the room as a whole: `room(t) =
/// pos.scale·k(pos) − neg.scale·k(neg)` with the [`ROOM_RADIUS`] kernel
/// around each prototype. Three recent skips of high-energy tracks make a
/// negative prototype centred on high energy (their other features vary,
/// so they get wide ranges and low weight).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RoomProfile {
    pub pos: Option<Proto>,
    pub neg: Option<Proto>,
}

impl RoomProfile {
    pub fn new(cat: &Catalog, reactions: &[Reaction], now_ms: i64) -> RoomProfile {
        let mut pos = Vec::new();
        let mut neg = Vec::new();
        for r in reactions {
            let Some(x) = cat.index_of(&r.track_id).and_then(|t| cat.features(t)) else {
                continue;
            };
            let w = r.weight_at(now_ms);
            if w > 0.0 {
                pos.push((x, w));
            } else if w < 0.0 {
                neg.push((x, -w));
            }
        }
        let proto = |ev: &[([f32; FEATURES], f32)]| {
            let w: f32 = ev.iter().map(|e| e.1).sum();
            (w > 0.0).then(|| Proto {
                terms: centroid_terms(ev),
                scale: w / (w + 1.0),
            })
        };
        RoomProfile {
            pos: proto(&pos),
            neg: proto(&neg),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pos.is_none() && self.neg.is_none()
    }

    /// The room term of a track with features `x` (0 without features).
    pub fn term(&self, x: Option<&[f32; FEATURES]>) -> f32 {
        let Some(x) = x else {
            return 0.0;
        };
        let inv = 1.0 / (ROOM_RADIUS * ROOM_RADIUS);
        let k = |p: &Option<Proto>| {
            p.as_ref()
                .map_or(0.0, |p| p.scale * kernel(distance2(&p.terms, x), inv))
        };
        k(&self.pos) - k(&self.neg)
    }
}

/// Mean fit of `terms` over an even sample of the catalog's tracks with
/// features (neutral 0.5 if no track has features).
fn mean_fit(cat: &Catalog, terms: &[Term]) -> f32 {
    if terms.is_empty() || cat.is_empty() {
        return NEUTRAL;
    }
    let step = (cat.len() / UNKNOWN_FIT_SAMPLE).max(1);
    let (mut sum, mut n) = (0.0, 0);
    for t in (0..cat.len()).step_by(step) {
        if let Some(x) = cat.features(TrackIx(t as u32)) {
            sum += kernel(distance2(terms, &x), 1.0 / (FIT_RADIUS * FIT_RADIUS));
            n += 1;
        }
    }
    if n == 0 {
        NEUTRAL
    } else {
        sum / n as f32
    }
}

/// Where a member's model comes from (see the module doc on cold start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Their preferences and/or their own reactions tonight.
    Own,
    /// Nothing of their own: the room's reactions.
    Room,
    /// Nothing at all yet: popularity within the room's genres.
    Popularity,
}

/// A member's taste resolved against one catalog and session: what the scan
/// evaluates for every track.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Model {
    pub terms: Vec<Term>,
    /// `0.8·κ` (0 without feature taste).
    pub w_fit: f32,
    /// Fit assumed for a track without features.
    pub unknown_fit: f32,
    pub constant: f32,
    pub w_pop: f32,
    pub w_room: f32,
    /// Added per genre slot of the track.
    pub genre_bonus: [f32; GENRE_SLOTS],
    /// (artist, adjustment), sorted by artist, one entry per artist.
    pub artists: Vec<(u32, f32)>,
    pub can_veto: bool,
    pub source: Source,
}

impl Model {
    /// Resolve `m` against the catalog, their own reactions (any order) and
    /// the room: see the module doc.
    pub fn new(
        cat: &Catalog,
        m: &MemberTaste,
        reactions: &[Reaction],
        now_ms: i64,
        room: &RoomProfile,
        room_genres: GenreSet,
    ) -> Model {
        let own: Vec<&Reaction> = reactions
            .iter()
            .filter(|r| r.user_id == m.user_id)
            .collect();
        let mut artists: Vec<(u32, f32)> = Vec::new();
        for a in m.top_artists.iter().filter_map(|a| cat.artist_id(a)) {
            artists.push((a.0, TOP_ARTIST));
        }
        let mut liked: Vec<([f32; FEATURES], f32)> = Vec::new();
        for r in &own {
            let Some(t) = cat.index_of(&r.track_id) else {
                continue;
            };
            let delta = r.kind.artist_delta();
            if delta != 0.0 {
                artists.extend(cat.artist_ids(t.get()).iter().map(|a| (*a, delta)));
            }
            let w = r.weight_at(now_ms);
            if let (true, Some(x)) = (w > 0.0, cat.features(t)) {
                liked.push((x, w));
            }
        }
        artists.sort_by_key(|a| a.0);
        artists.dedup_by(|b, a| {
            if a.0 == b.0 {
                a.1 += b.1;
                true
            } else {
                false
            }
        });
        for a in &mut artists {
            a.1 = a.1.clamp(DISLIKED_ARTIST, TOP_ARTIST);
        }

        let (terms, kappa) = if !m.targets.is_empty() {
            let mut terms: Vec<Term> = m
                .targets
                .iter()
                .map(|t| Term {
                    feature: t.feature,
                    center: t.center,
                    half: t.half,
                    weight: if BASE_WEIGHT[t.feature] > 0.0 {
                        BASE_WEIGHT[t.feature]
                    } else {
                        0.5
                    },
                })
                .collect();
            // Not normalized: each stated range is a constraint of its own,
            // so missing one by the radius is enough to fall to 0.
            // Rocchio: tonight's likes pull the stated targets their way.
            let w: f32 = liked.iter().map(|l| l.1).sum();
            if w > 0.0 {
                let pull = ROCCHIO_PULL * w / (w + 2.0);
                for t in &mut terms {
                    let mean = liked.iter().map(|(x, lw)| x[t.feature] * lw).sum::<f32>() / w;
                    t.center += pull * (mean - t.center);
                }
            }
            (terms, 1.0)
        } else {
            let mut evidence: Vec<([f32; FEATURES], f32)> = m
                .top_tracks
                .iter()
                .filter_map(|s| cat.index_of_spotify(s).and_then(|t| cat.features(t)))
                .map(|x| (x, 1.0))
                .collect();
            evidence.extend(liked.iter().copied());
            let w: f32 = evidence.iter().map(|e| e.1).sum();
            (centroid_terms(&evidence), w / (w + 2.0))
        };

        let mut genre_bonus = [0.0; GENRE_SLOTS];
        let own_evidence = !terms.is_empty() || !artists.is_empty() || !m.genres.is_empty();
        if own_evidence {
            for g in m.genres.iter() {
                genre_bonus[g.index() as usize] = GENRE_BONUS;
            }
            let w_fit = if terms.is_empty() { 0.0 } else { W_FIT * kappa };
            let kappa = if terms.is_empty() { 0.0 } else { kappa };
            return Model {
                unknown_fit: mean_fit(cat, &terms),
                terms,
                w_fit,
                constant: NEUTRAL * (1.0 - kappa),
                w_pop: W_POP,
                w_room: ROOM_WEIGHT,
                genre_bonus,
                artists,
                can_veto: true,
                source: Source::Own,
            };
        }
        if !room.is_empty() {
            return Model {
                terms: Vec::new(),
                w_fit: 0.0,
                unknown_fit: 0.0,
                constant: COLD_ROOM_BASE,
                w_pop: W_POP,
                w_room: COLD_ROOM_WEIGHT,
                genre_bonus,
                artists: Vec::new(),
                can_veto: false,
                source: Source::Room,
            };
        }
        for g in room_genres.iter() {
            genre_bonus[g.index() as usize] = COLD_GENRE_BONUS;
        }
        Model {
            terms: Vec::new(),
            w_fit: 0.0,
            unknown_fit: 0.0,
            constant: COLD_POP_BASE,
            w_pop: COLD_POP_WEIGHT,
            w_room: 0.0,
            genre_bonus,
            artists: Vec::new(),
            can_veto: false,
            source: Source::Popularity,
        }
    }

    /// The artist adjustment for track `t` (sum over its artists).
    pub fn artist_term(&self, cat: &Catalog, t: usize) -> f32 {
        if self.artists.is_empty() {
            return 0.0;
        }
        cat.artist_ids(t)
            .iter()
            .filter_map(|a| {
                self.artists
                    .binary_search_by_key(a, |e| e.0)
                    .ok()
                    .map(|i| self.artists[i].1)
            })
            .sum()
    }

    /// The member's own part (no room, no artist term), before clamping:
    /// what the scan computes for a whole block at once (same formula, same
    /// order).
    #[inline]
    pub fn own_base(&self, cat: &Catalog, t: usize) -> f32 {
        let known = cat.known_column()[t];
        let fit = if self.terms.is_empty() {
            0.0
        } else {
            let x = cat.features(TrackIx(t as u32)).unwrap_or([0.0; FEATURES]);
            let k = kernel(distance2(&self.terms, &x), 1.0 / (FIT_RADIUS * FIT_RADIUS));
            known * k + (1.0 - known) * self.unknown_fit
        };
        self.w_fit * fit
            + self.constant
            + self.w_pop * cat.popularity_column()[t]
            + self.genre_bonus[cat.genre_column()[t] as usize]
    }

    /// Predicted satisfaction of this member with track `t`, in 0..1, and
    /// the same without the room term: what the member's own taste and own
    /// reactions say, the part that may veto.
    pub fn satisfaction(&self, cat: &Catalog, t: usize, room: f32) -> (f32, f32) {
        let own = self.own_base(cat, t);
        let artist = self.artist_term(cat, t);
        (
            clamp01(own + self.w_room * room + artist),
            clamp01(own + artist),
        )
    }

    /// Is `a` one of the member's top artists?
    pub fn loves_artist(&self, a: u32) -> bool {
        self.artists
            .binary_search_by_key(&a, |e| e.0)
            .is_ok_and(|i| self.artists[i].1 >= TOP_ARTIST)
    }
}

#[cfg(test)]
mod tests {
    use super::super::catalog::f;
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_targets_ranges_and_spotify_style_keys() {
        let t = parse_features(&json!({
            "danceability": 0.8,
            "energy": { "min": 0.1, "max": 0.9 },
            "valence": { "max": 0.4 },
            "min_tempo": 110, "max_tempo": 140,
            "target_loudness": -12.5,
            "moods": ["calm"],
            "liveness": "high",
        }));
        let by = |i| t.iter().find(|t| t.feature == i).copied().unwrap();
        assert_eq!(t.len(), 5);
        assert_eq!(
            by(f::DANCE),
            Target {
                feature: f::DANCE,
                center: 0.8,
                half: 0.0
            }
        );
        let e = by(f::ENERGY);
        assert!((e.center - 0.5).abs() < 1e-6 && (e.half - 0.4).abs() < 1e-6);
        let v = by(f::VALENCE);
        assert!((v.center - 0.2).abs() < 1e-6 && (v.half - 0.2).abs() < 1e-6);
        let tempo = by(f::TEMPO);
        assert!((tempo.center - 0.5).abs() < 1e-6 && (tempo.half - 0.1).abs() < 1e-6);
        assert_eq!(by(f::LOUD).center, 0.5);
        assert!(parse_features(&json!([1, 2])).is_empty());
        assert!(parse_features(&json!({})).is_empty());
    }

    #[test]
    fn reaction_kinds_and_recency() {
        for k in [
            "play",
            "skip",
            "like",
            "dislike",
            "save",
            "share",
            "add_to_playlist",
        ] {
            assert!(ReactionKind::parse(k).is_some(), "{k}");
        }
        assert_eq!(ReactionKind::parse("wave"), None);
        let r = Reaction {
            user_id: "u".into(),
            track_id: "t".into(),
            kind: ReactionKind::Skip,
            at_ms: 0,
        };
        assert_eq!(r.weight_at(0), -0.6);
        assert!((r.weight_at(REACTION_HALF_LIFE_MS as i64) + 0.3).abs() < 1e-6);
        // A reaction stamped after "now" counts as fresh.
        assert_eq!(r.weight_at(-5), -0.6);
    }

    #[test]
    fn preferences_parse_into_a_taste() {
        let prefs = Preferences {
            top_tracks: vec!["sp1".into()],
            top_artists: vec!["Muse".into()],
            genres: vec!["drum & bass".into(), "polka".into()],
            features: Some(json!({ "energy": 0.9 })),
            last_updated: chrono::Utc::now(),
        };
        let m = MemberTaste::from_preferences("u1", "Ana", Some(&prefs));
        assert!(m.has_preferences());
        assert_eq!(m.targets.len(), 1);
        assert_eq!(
            m.genres.iter().collect::<Vec<_>>(),
            [super::super::genre::Genre::Dance]
        );
        assert!(!MemberTaste::from_preferences("u2", "Ben", None).has_preferences());
    }
}
