//! `audotics-suggest-eval`: the offline evaluation of group suggestions
//! (issue 19). Synthetic rooms with planted tastes over a synthetic
//! catalog (`audotics_hub::suggest::synth`); for each room the top 10 of
//! each strategy is graded by the planted ground truth, never by the
//! engine's own model:
//! - per member, satisfaction = mean true satisfaction over the ten tracks;
//!   the room's **mean** and **minimum** over members; the guest's (the one
//!   member from another style, who never reacts); the **misery** rate,
//!   the share of (member, track) pairs below 0.2 true satisfaction;
//! - strategies: the popularity baseline, the single-host baseline (the old
//!   app's per-user content score applied to the host only: 0.7 × cosine
//!   of the eleven normalized features to the centroid of the host's top
//!   tracks + 0.3 × top-artist match), the plain average, average without
//!   misery, and the engine's default (with fairness and tolerance);
//! - the skip scenario: the three highest-energy tracks of different
//!   styles among the engine's top 300 are played and skipped by three
//!   members; the mean energy of the top 10 before and after, in how many
//!   rooms it fell, and how many of the ten stay.
//!
//! Deterministic: the catalog and each room come from fixed seeds.

use std::collections::HashSet;
use std::time::Instant;

use audotics_hub::suggest::synth::{self, Planted, SynthCatalog};
use audotics_hub::suggest::{
    self, Catalog, MemberTaste, Reaction, ReactionKind, Room, Strategy, TrackIx,
};
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "audotics-suggest-eval",
    about = "Offline evaluation of Audotics group suggestions on synthetic rooms with planted tastes"
)]
struct Cli {
    /// Rooms per room shape.
    #[arg(long, default_value_t = 100)]
    rooms: u64,
    /// Tracks in the synthetic catalog.
    #[arg(long, default_value_t = 50_000)]
    tracks: usize,
    /// Styles (clusters in feature space) in the catalog.
    #[arg(long, default_value_t = 40)]
    clusters: usize,
    /// Seed of the catalog; room seeds follow from it.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// The engine row's misery threshold (default: `Strategy::default()`).
    #[arg(long)]
    misery: Option<f32>,
    /// The engine row's fairness λ.
    #[arg(long)]
    fairness: Option<f32>,
    /// The engine row's tolerance δ.
    #[arg(long)]
    tolerance: Option<f32>,
    /// The engine row's coverage bonus.
    #[arg(long)]
    coverage: Option<f32>,
}

/// A room shape: members, styles they split into, and whether one more
/// member (the guest) comes from yet another style.
struct Shape {
    name: &'static str,
    members: usize,
    camps: usize,
    guest: bool,
}

const SHAPES: [Shape; 3] = [
    Shape {
        name: "3 friends + 1 guest",
        members: 4,
        camps: 1,
        guest: true,
    },
    Shape {
        name: "8: two styles + 1 guest",
        members: 8,
        camps: 2,
        guest: true,
    },
    Shape {
        name: "30: four styles + 1 guest",
        members: 30,
        camps: 4,
        guest: true,
    },
];

#[derive(Clone, Copy, PartialEq)]
enum Method {
    Popularity,
    SingleHost,
    Average,
    WithoutMisery,
    Engine,
}

const METHODS: [(Method, &str); 5] = [
    (Method::Popularity, "popularity (baseline)"),
    (
        Method::SingleHost,
        "single host, old app's score (baseline)",
    ),
    (Method::Average, "average (no veto, no fairness)"),
    (Method::WithoutMisery, "average without misery"),
    (
        Method::Engine,
        "**engine**: without misery + fairness + tolerance",
    ),
];

#[derive(Clone, Copy, Default)]
struct Grade {
    mean: f64,
    min: f64,
    guest: f64,
    misery: f64,
}

impl Grade {
    fn add(&mut self, g: Grade, n: f64) {
        self.mean += g.mean / n;
        self.min += g.min / n;
        self.guest += g.guest / n;
        self.misery += g.misery / n;
    }
}

fn grade(synth: &SynthCatalog, planted: &[Planted], list: &[usize]) -> Grade {
    let mut per_member = Vec::with_capacity(planted.len());
    let mut miserable = 0usize;
    for p in planted {
        let sats: Vec<f32> = list.iter().map(|&i| p.satisfaction(synth, i)).collect();
        miserable += sats.iter().filter(|s| **s < 0.2).count();
        per_member.push(sats.iter().sum::<f32>() as f64 / list.len().max(1) as f64);
    }
    Grade {
        mean: per_member.iter().sum::<f64>() / per_member.len() as f64,
        min: per_member.iter().copied().fold(f64::INFINITY, f64::min),
        guest: *per_member.last().unwrap_or(&0.0),
        misery: miserable as f64 / (planted.len() * list.len().max(1)) as f64,
    }
}

/// The old app's content score for one user (`content-filter.service.ts`,
/// as the issue summarizes it): cosine of the eleven features to the
/// user's profile 0.7, top-artist match 0.3.
fn single_host(
    cat: &Catalog,
    host: &MemberTaste,
    excluded: &HashSet<usize>,
    n: usize,
) -> Vec<usize> {
    let profile: Vec<[f32; 11]> = host
        .top_tracks
        .iter()
        .filter_map(|s| cat.index_of_spotify(s).and_then(|t| cat.features(t)))
        .collect();
    let mut centroid = [0f32; 11];
    for x in &profile {
        for (c, v) in centroid.iter_mut().zip(x) {
            *c += v / profile.len() as f32;
        }
    }
    let norm = |x: &[f32; 11]| x.iter().map(|v| v * v).sum::<f32>().sqrt();
    let cn = norm(&centroid);
    let artists: HashSet<_> = host
        .top_artists
        .iter()
        .filter_map(|a| cat.artist_id(a))
        .collect();
    let mut scored: Vec<(f32, usize)> = (0..cat.len())
        .filter(|i| !excluded.contains(i))
        .map(|i| {
            let t = TrackIx(i as u32);
            let cos = cat.features(t).map_or(0.0, |x| {
                let d = norm(&x) * cn;
                if d > 0.0 {
                    x.iter().zip(&centroid).map(|(a, b)| a * b).sum::<f32>() / d
                } else {
                    0.0
                }
            });
            let artist = cat.artists(t).any(|a| artists.contains(&a)) as u8 as f32;
            (0.7 * cos + 0.3 * artist, i)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(n).map(|s| s.1).collect()
}

fn popularity(cat: &Catalog, excluded: &HashSet<usize>, n: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..cat.len()).filter(|i| !excluded.contains(i)).collect();
    all.sort_by(|a, b| {
        cat.popularity(TrackIx(*b as u32))
            .total_cmp(&cat.popularity(TrackIx(*a as u32)))
            .then(a.cmp(b))
    });
    all.truncate(n);
    all
}

fn engine(cat: &Catalog, room: &Room, strategy: &Strategy, n: usize) -> Vec<usize> {
    suggest::suggest_with(cat, room, n, strategy)
        .iter()
        .map(|s| {
            cat.index_of(&s.track_id)
                .expect("suggested from the catalog")
                .get()
        })
        .collect()
}

fn energy(synth: &SynthCatalog, list: &[usize]) -> f64 {
    let e: Vec<f32> = list
        .iter()
        .filter_map(|&i| synth.features[i].map(|x| x[1]))
        .collect();
    e.iter().sum::<f32>() as f64 / e.len().max(1) as f64
}

fn main() {
    let cli = Cli::parse();
    let started = Instant::now();
    let synth = synth::catalog(cli.tracks, cli.clusters, cli.seed);
    let cat = Catalog::from_rows(synth.rows.clone());
    let mut default = Strategy::default();
    default.misery = cli.misery.unwrap_or(default.misery);
    default.fairness = cli.fairness.unwrap_or(default.fairness);
    default.tolerance = cli.tolerance.unwrap_or(default.tolerance);
    default.coverage = cli.coverage.unwrap_or(default.coverage);
    let average = Strategy {
        misery: 0.0,
        fairness: 0.0,
        tolerance: 0.0,
        coverage: 0.0,
        ..Strategy::default()
    };
    let without_misery = Strategy {
        fairness: 0.0,
        tolerance: 0.0,
        coverage: 0.0,
        ..Strategy::default()
    };

    println!(
        "Synthetic catalog: {} tracks in {} styles (seed {}); {} rooms per shape; top 10 graded by planted truth.\n",
        cli.tracks, cli.clusters, cli.seed, cli.rooms
    );
    println!("| room | strategy | mean satisfaction | min member | guest | misery (pairs < 0.2) |");
    println!("|---|---|---|---|---|---|");
    let mut skips: Vec<(&str, [f64; 7])> = Vec::new();
    for (si, shape) in SHAPES.iter().enumerate() {
        let mut grades = [Grade::default(); METHODS.len()];
        let mut skip = [0f64; 7];
        let n = cli.rooms as f64;
        for r in 0..cli.rooms {
            let seed = cli.seed ^ ((si as u64 + 1) << 32) ^ r;
            let (members, planted) =
                synth::room(&synth, shape.members, shape.camps, shape.guest, seed);
            let mut room = Room {
                members,
                now_ms: 3_600_000,
                ..Room::default()
            };
            let none = HashSet::new();
            for (g, (method, _)) in grades.iter_mut().zip(METHODS) {
                let list = match method {
                    Method::Popularity => popularity(&cat, &none, 10),
                    Method::SingleHost => single_host(&cat, &room.members[0], &none, 10),
                    Method::Average => engine(&cat, &room, &average, 10),
                    Method::WithoutMisery => engine(&cat, &room, &without_misery, 10),
                    Method::Engine => engine(&cat, &room, &default, 10),
                };
                g.add(grade(&synth, &planted, &list), n);
            }

            // Three skips of high-energy tracks of different styles.
            let before = engine(&cat, &room, &default, 10);
            let top = engine(&cat, &room, &default, 300);
            let victims = synth::loudest_distinct(&synth, &top, 3);
            for (k, &t) in victims.iter().enumerate() {
                let id = synth::track_id(t);
                room.history.push(id.clone());
                room.excluded.insert(id.clone());
                room.reactions.push(Reaction {
                    user_id: room.members[k % room.members.len()].user_id.clone(),
                    track_id: id,
                    kind: ReactionKind::Skip,
                    at_ms: room.now_ms - 60_000 * (3 - k as i64),
                });
            }
            let after = engine(&cat, &room, &default, 10);
            let kept = before
                .iter()
                .filter(|t| !victims.contains(t) && after.contains(t))
                .count();
            skip[0] += energy(&synth, &victims) / n;
            skip[1] += energy(&synth, &before) / n;
            skip[2] += energy(&synth, &after) / n;
            skip[3] += kept as f64 / n;
            skip[4] += grade(&synth, &planted, &before).mean / n;
            skip[5] += grade(&synth, &planted, &after).mean / n;
            skip[6] += (energy(&synth, &after) < energy(&synth, &before)) as u8 as f64 / n;
        }
        for (g, (_, name)) in grades.iter().zip(METHODS) {
            println!(
                "| {} | {} | {:.3} | {:.3} | {:.3} | {:.1} % |",
                shape.name,
                name,
                g.mean,
                g.min,
                g.guest,
                100.0 * g.misery
            );
        }
        skips.push((shape.name, skip));
    }

    println!("\nThree skips of high-energy tracks (engine, default strategy):\n");
    println!("| room | energy of the skipped | top-10 energy before | after | rooms where it fell | of the 10 kept | mean satisfaction before | after |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, s) in skips {
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.0} % | {:.1} | {:.3} | {:.3} |",
            s[0],
            s[1],
            s[2],
            100.0 * s[6],
            s[3],
            s[4],
            s[5]
        );
    }
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
}
