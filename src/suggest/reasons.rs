//! Why a suggestion is there, in words a guest reads at a glance:
//! "energetic and danceable, close to what three of you liked", "a
//! favourite artist of Ana and Ben", "popular with the room's pop fans".
//!
//! [`explain`] gathers the facts behind one suggestion ([`Why`]): the one
//! or two features that stand out against the catalog (z-score ≥ 0.75,
//! loudness, key and mode left out), who it fits, whose favourite artist
//! it is, whether it resembles what the room liked or differs from what it
//! skipped, or only its popularity in a room genre. [`describe`] turns them
//! into one short phrase, the most personal fact first.

use super::catalog::{f, Catalog, TrackIx, FEATURES};
use super::genre::{Genre, GenreSet};
use super::taste::{distance2, kernel, MemberTaste, Model, RoomProfile, Source, ROOM_RADIUS};

/// The adjective for a feature well above / below the catalog's mean.
const TRAITS: [(usize, &str, Option<&str>); 8] = [
    (f::ENERGY, "energetic", Some("mellow")),
    (f::DANCE, "danceable", None),
    (f::VALENCE, "upbeat", Some("moody")),
    (f::ACOUSTIC, "acoustic", None),
    (f::INSTR, "instrumental", None),
    (f::SPEECH, "rap-flavoured", None),
    (f::TEMPO, "fast", Some("slow")),
    (f::LIVE, "live-sounding", None),
];

/// How far from the mean (in standard deviations) a feature must be to be
/// worth naming.
const SALIENT: f32 = 0.75;

/// The facts behind one suggestion.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Why<'a> {
    /// At most two adjectives, the most salient first.
    pub traits: Vec<&'static str>,
    /// Members whose top artist made this track.
    pub fans: Vec<&'a str>,
    /// Members (with a taste of their own) it fits.
    pub fits: Vec<&'a str>,
    /// Members present with a taste of their own.
    pub own_members: usize,
    pub room_liked: bool,
    pub unlike_skipped: bool,
    /// The room genre it is popular in (cold start).
    pub genre: Option<Genre>,
}

/// Gather the facts for track `t` with members' satisfactions `sat`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn explain<'a>(
    cat: &Catalog,
    members: &'a [MemberTaste],
    models: &[Model],
    room: &RoomProfile,
    room_genres: GenreSet,
    t: TrackIx,
    sat: &[f32],
    fit: f32,
) -> Why<'a> {
    let x = cat.features(t);
    let mut why = Why {
        traits: x.as_ref().map(|x| traits(cat, x)).unwrap_or_default(),
        own_members: models.iter().filter(|m| m.source == Source::Own).count(),
        ..Why::default()
    };
    for ((m, md), s) in members.iter().zip(models).zip(sat) {
        if md.source != Source::Own {
            continue;
        }
        if cat.artist_ids(t.get()).iter().any(|a| md.loves_artist(*a)) {
            why.fans.push(&m.name);
        }
        if *s >= fit {
            why.fits.push(&m.name);
        }
    }
    if let Some(x) = &x {
        let inv = 1.0 / (ROOM_RADIUS * ROOM_RADIUS);
        if let Some(p) = &room.pos {
            why.room_liked = p.scale * kernel(distance2(&p.terms, x), inv) >= 0.15;
        }
        if let Some(n) = &room.neg {
            why.unlike_skipped = n.scale >= 0.4 && kernel(distance2(&n.terms, x), inv) == 0.0;
        }
    }
    why.genre = cat.genre(t).filter(|g| room_genres.contains(*g));
    why
}

/// Up to two adjectives for the features of `x` that stand out.
fn traits(cat: &Catalog, x: &[f32; FEATURES]) -> Vec<&'static str> {
    let (mean, std) = cat.feature_stats();
    let mut found: Vec<(f32, &'static str)> = TRAITS
        .iter()
        .filter_map(|&(i, high, low)| {
            if std[i] <= 0.0 {
                return None;
            }
            let z = (x[i] - mean[i]) / std[i];
            if z >= SALIENT {
                Some((z, high))
            } else if z <= -SALIENT {
                low.map(|w| (-z, w))
            } else {
                None
            }
        })
        .collect();
    found.sort_by(|a, b| b.0.total_cmp(&a.0));
    found.into_iter().take(2).map(|f| f.1).collect()
}

/// One short phrase (see the module doc); never empty.
pub fn describe(why: &Why<'_>) -> String {
    let traits = why.traits.join(" and ");
    let with = |clause: String| {
        if traits.is_empty() {
            clause
        } else {
            format!("{traits}, {clause}")
        }
    };
    if !why.fans.is_empty() {
        let clause = format!("a favourite artist of {}", names(&why.fans));
        return if traits.is_empty() {
            clause
        } else {
            format!("{traits}, by {clause}")
        };
    }
    if why.fits.len() >= 2 {
        return with(format!("close to what {} liked", who(why)));
    }
    if why.room_liked {
        return with("like what the room liked tonight".into());
    }
    if why.unlike_skipped {
        return with("a change from what was skipped".into());
    }
    if why.fits.len() == 1 {
        return with(format!("close to what {} liked", why.fits[0]));
    }
    if let Some(g) = why.genre {
        return format!("popular with the room's {} fans", g.label());
    }
    with("a popular pick".into())
}

/// "all of you", "three of you", "12 of you".
fn who(why: &Why<'_>) -> String {
    const WORDS: [&str; 11] = [
        "none", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    let n = why.fits.len();
    if n == why.own_members {
        return if n == 2 { "both of you" } else { "all of you" }.into();
    }
    match WORDS.get(n) {
        Some(w) => format!("{w} of you"),
        None => format!("{n} of you"),
    }
}

/// "Ana", "Ana and Ben", "Ana, Ben and Cy", "Ana, Ben and 3 others".
fn names(list: &[&str]) -> String {
    match list {
        [] => String::new(),
        [a] => (*a).to_owned(),
        [a, b] => format!("{a} and {b}"),
        [a, b, c] => format!("{a}, {b} and {c}"),
        [a, b, rest @ ..] => format!("{a}, {b} and {} others", rest.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why<'a>() -> Why<'a> {
        Why {
            own_members: 4,
            ..Why::default()
        }
    }

    #[test]
    fn phrases() {
        let w = Why {
            traits: vec!["energetic", "danceable"],
            fits: vec!["Ana", "Ben", "Cy"],
            ..why()
        };
        assert_eq!(
            describe(&w),
            "energetic and danceable, close to what three of you liked"
        );
        let w = Why {
            fans: vec!["Ana", "Ben"],
            fits: vec!["Ana", "Ben"],
            ..why()
        };
        assert_eq!(describe(&w), "a favourite artist of Ana and Ben");
        let w = Why {
            traits: vec!["mellow"],
            fans: vec!["Ana", "Ben", "Cy", "Dee"],
            ..why()
        };
        assert_eq!(
            describe(&w),
            "mellow, by a favourite artist of Ana, Ben and 2 others"
        );
        let w = Why {
            fits: vec!["Ana", "Ben", "Cy", "Dee"],
            ..why()
        };
        assert_eq!(describe(&w), "close to what all of you liked");
        let w = Why {
            traits: vec!["mellow"],
            fits: vec!["Ana"],
            unlike_skipped: true,
            ..why()
        };
        assert_eq!(describe(&w), "mellow, a change from what was skipped");
        let w = Why {
            fits: vec!["Ana"],
            ..why()
        };
        assert_eq!(describe(&w), "close to what Ana liked");
        let w = Why {
            genre: Some(Genre::Pop),
            ..why()
        };
        assert_eq!(describe(&w), "popular with the room's pop fans");
        assert_eq!(describe(&why()), "a popular pick");
        let w = Why {
            traits: vec!["instrumental", "upbeat"],
            ..why()
        };
        assert_eq!(describe(&w), "instrumental and upbeat, a popular pick");
        let w = Why {
            traits: vec!["upbeat"],
            room_liked: true,
            ..why()
        };
        assert_eq!(describe(&w), "upbeat, like what the room liked tonight");
    }
}
