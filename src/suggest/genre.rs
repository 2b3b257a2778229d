//! Genre families: how "the room's genres" meet tracks that have no genre.
//!
//! The schema stores genres only on `UserPreference` (free text: "pop",
//! "drum & bass", "indie rock"); `"Track"` has none, and Spotify's genres
//! belong to artists the hub never fetches. So both sides are mapped onto a
//! small fixed set of families:
//! - a **track** belongs to the family whose prototype (a few audio-feature
//!   values) is nearest to its normalized features, so every track with
//!   features gets one, real or demo, with no extra data;
//! - a **member's genre** belongs to the first family (in [`KEYWORDS`] order)
//!   one of whose keywords it contains, case-insensitively ("drum & bass" →
//!   dance, "indie rock" → rock); a genre matching none is ignored.
//!
//! Coarse on purpose: a family says "this sounds like what a hip-hop fan
//! listens to", which is what a room's genres are used for (a bonus, the
//! cold-start popularity ranking and reasons), never a veto.

use super::catalog::{f, FEATURES};

/// A genre family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Genre {
    Pop,
    Dance,
    Rock,
    HipHop,
    Acoustic,
    Ambient,
    Jazz,
    Chill,
    Latin,
}

/// How many families there are.
pub const GENRES: usize = 9;

/// Index in per-genre tables of a track with no family (no features).
pub const NO_GENRE: u8 = GENRES as u8;

/// Per-genre tables are this long: every family and [`NO_GENRE`], rounded
/// up to 16 so that the scan indexes them with `g & 15`, no bounds check.
pub const GENRE_SLOTS: usize = 16;

impl Genre {
    pub const ALL: [Genre; GENRES] = [
        Genre::Pop,
        Genre::Dance,
        Genre::Rock,
        Genre::HipHop,
        Genre::Acoustic,
        Genre::Ambient,
        Genre::Jazz,
        Genre::Chill,
        Genre::Latin,
    ];

    /// The family's index in per-genre tables.
    pub fn index(self) -> u8 {
        self as u8
    }

    pub fn from_index(i: u8) -> Option<Genre> {
        Genre::ALL.get(i as usize).copied()
    }

    /// What a reason calls its fans ("the room's {label} fans").
    pub fn label(self) -> &'static str {
        match self {
            Genre::Pop => "pop",
            Genre::Dance => "dance",
            Genre::Rock => "rock",
            Genre::HipHop => "hip-hop",
            Genre::Acoustic => "folk and acoustic",
            Genre::Ambient => "ambient and classical",
            Genre::Jazz => "jazz and soul",
            Genre::Chill => "chill",
            Genre::Latin => "latin",
        }
    }

    /// The family a member's genre string belongs to (see the module doc).
    pub fn of_name(name: &str) -> Option<Genre> {
        let name = name.trim().to_lowercase();
        KEYWORDS
            .iter()
            .find(|(_, words)| words.iter().any(|w| name.contains(w)))
            .map(|(g, _)| *g)
    }
}

/// A set of families as a bit mask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenreSet(u16);

impl GenreSet {
    pub fn insert(&mut self, g: Genre) {
        self.0 |= 1 << g.index();
    }

    pub fn contains(self, g: Genre) -> bool {
        self.0 & (1 << g.index()) != 0
    }

    /// Does the set hold the family at table index `i` ([`NO_GENRE`]: no)?
    pub fn contains_index(self, i: u8) -> bool {
        (i as usize) < GENRES && self.0 & (1 << i) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn union(self, other: GenreSet) -> GenreSet {
        GenreSet(self.0 | other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Genre> {
        Genre::ALL.into_iter().filter(move |g| self.contains(*g))
    }

    /// The families of member genre strings; unknown strings are skipped.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> GenreSet {
        let mut set = GenreSet::default();
        for g in names.iter().filter_map(|n| Genre::of_name(n.as_ref())) {
            set.insert(g);
        }
        set
    }
}

/// Member genre keywords per family, checked in this order (so "trip hop"
/// is chill, "dance pop" dance and "indie pop" rock).
pub const KEYWORDS: [(Genre, &[&str]); GENRES] = [
    (
        Genre::HipHop,
        &["hip hop", "hip-hop", "hiphop", "rap", "grime", "drill"],
    ),
    (
        Genre::Latin,
        &[
            "latin",
            "reggaeton",
            "salsa",
            "bachata",
            "cumbia",
            "afro",
            "dancehall",
            "reggae",
            "samba",
            "bossa",
        ],
    ),
    (
        Genre::Chill,
        &[
            "chill",
            "lo-fi",
            "lofi",
            "downtempo",
            "lounge",
            "trip hop",
            "trip-hop",
            "sleep",
            "study",
        ],
    ),
    (
        Genre::Dance,
        &[
            "edm", "house", "techno", "trance", "drum", "dnb", "dubstep", "electro", "garage",
            "dance", "disco", "rave", "club",
        ],
    ),
    (
        Genre::Rock,
        &[
            "rock",
            "metal",
            "punk",
            "grunge",
            "emo",
            "hardcore",
            "indie",
            "alternative",
            "shoegaze",
        ],
    ),
    (
        Genre::Jazz,
        &[
            "jazz", "soul", "blues", "r&b", "rnb", "funk", "gospel", "motown", "swing",
        ],
    ),
    (
        Genre::Ambient,
        &[
            "classical",
            "ambient",
            "soundtrack",
            "instrumental",
            "piano",
            "orchestra",
            "new age",
        ],
    ),
    (
        Genre::Acoustic,
        &[
            "folk",
            "acoustic",
            "country",
            "singer",
            "songwriter",
            "bluegrass",
            "americana",
        ],
    ),
    (Genre::Pop, &["pop"]),
];

/// Each family's prototype: a few normalized feature values; a track's
/// family is the one with the least mean squared difference over its
/// prototype's features. Values follow the usual shape of each style in
/// Spotify's audio features (tempo 0.5 is 125 BPM, loudness 0.85 is −4 dB).
const PROTOTYPES: [(Genre, &[(usize, f32)]); GENRES] = [
    (
        Genre::Pop,
        &[
            (f::DANCE, 0.65),
            (f::ENERGY, 0.65),
            (f::VALENCE, 0.6),
            (f::ACOUSTIC, 0.15),
            (f::SPEECH, 0.06),
            (f::INSTR, 0.02),
        ],
    ),
    (
        Genre::Dance,
        &[
            (f::DANCE, 0.75),
            (f::ENERGY, 0.85),
            (f::INSTR, 0.5),
            (f::ACOUSTIC, 0.03),
            (f::TEMPO, 0.5),
            (f::VALENCE, 0.5),
        ],
    ),
    (
        Genre::Rock,
        &[
            (f::ENERGY, 0.85),
            (f::DANCE, 0.4),
            (f::ACOUSTIC, 0.05),
            (f::LOUD, 0.85),
            (f::INSTR, 0.1),
            (f::SPEECH, 0.05),
            (f::VALENCE, 0.45),
        ],
    ),
    (
        Genre::HipHop,
        &[
            (f::SPEECH, 0.3),
            (f::DANCE, 0.75),
            (f::ENERGY, 0.6),
            (f::ACOUSTIC, 0.15),
            (f::INSTR, 0.0),
        ],
    ),
    (
        Genre::Acoustic,
        &[
            (f::ACOUSTIC, 0.8),
            (f::ENERGY, 0.35),
            (f::DANCE, 0.5),
            (f::INSTR, 0.05),
            (f::VALENCE, 0.45),
        ],
    ),
    (
        Genre::Ambient,
        &[
            (f::INSTR, 0.85),
            (f::ENERGY, 0.2),
            (f::ACOUSTIC, 0.75),
            (f::DANCE, 0.3),
        ],
    ),
    (
        Genre::Jazz,
        &[
            (f::ACOUSTIC, 0.5),
            (f::ENERGY, 0.45),
            (f::DANCE, 0.6),
            (f::VALENCE, 0.6),
            (f::INSTR, 0.3),
            (f::SPEECH, 0.05),
        ],
    ),
    (
        Genre::Chill,
        &[
            (f::ENERGY, 0.35),
            (f::DANCE, 0.6),
            (f::VALENCE, 0.35),
            (f::ACOUSTIC, 0.4),
            (f::INSTR, 0.2),
        ],
    ),
    (
        Genre::Latin,
        &[
            (f::DANCE, 0.8),
            (f::ENERGY, 0.75),
            (f::VALENCE, 0.8),
            (f::ACOUSTIC, 0.15),
            (f::SPEECH, 0.08),
        ],
    ),
];

/// The family of a track with these normalized features.
pub fn of_features(x: &[f32; FEATURES]) -> Genre {
    let mut best = (f32::INFINITY, Genre::Pop);
    for (g, proto) in PROTOTYPES {
        let d = proto.iter().map(|&(i, v)| (x[i] - v).powi(2)).sum::<f32>() / proto.len() as f32;
        if d < best.0 {
            best = (d, g);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_genres_map_by_keyword_in_table_order() {
        for (name, g) in [
            ("pop", Genre::Pop),
            ("K-Pop", Genre::Pop),
            ("drum & bass", Genre::Dance),
            ("dance pop", Genre::Dance),
            ("indie pop", Genre::Rock),
            ("Indie Rock", Genre::Rock),
            ("trip hop", Genre::Chill),
            ("hip hop", Genre::HipHop),
            ("R&B", Genre::Jazz),
            ("singer-songwriter", Genre::Acoustic),
            ("modern classical", Genre::Ambient),
            ("reggaeton", Genre::Latin),
        ] {
            assert_eq!(Genre::of_name(name), Some(g), "{name}");
        }
        assert_eq!(Genre::of_name("polka"), None);
        let set = GenreSet::from_names(&["jazz", "polka", "metal"]);
        assert_eq!(set.iter().collect::<Vec<_>>(), [Genre::Rock, Genre::Jazz]);
        assert!(!set.contains_index(NO_GENRE));
    }

    #[test]
    fn each_prototype_is_its_own_family() {
        for (g, proto) in PROTOTYPES {
            // Unspecified features at the catalog's typical middle.
            let mut x = [0.5; FEATURES];
            x[f::SPEECH] = 0.05;
            x[f::INSTR] = 0.05;
            for &(i, v) in proto {
                x[i] = v;
            }
            assert_eq!(of_features(&x), g);
        }
        for (i, g) in Genre::ALL.iter().enumerate() {
            assert_eq!(g.index() as usize, i);
            assert_eq!(Genre::from_index(i as u8), Some(*g));
        }
    }
}
