//! Group suggestions: one recompute (`suggest`, top 10) for a room of 30
//! members over 100,000 and 1,000,000 synthetic tracks, and of 5 members
//! over 100,000 (`cargo bench --bench suggest`). The room is mid-party: 12
//! reactions, 20 tracks played, 40 excluded.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};

use audotics_hub::suggest::synth::{self, track_id};
use audotics_hub::suggest::{self, Catalog, Reaction, ReactionKind, Room};

fn room(synth: &synth::SynthCatalog, members: usize) -> Room {
    let (members, _) = synth::room(synth, members, 4, true, 1);
    let mut rng = synth::Rng::new(9);
    let n = synth.rows.len();
    let history: Vec<String> = (0..20).map(|_| track_id(rng.below(n))).collect();
    let mut excluded: std::collections::HashSet<String> = history.iter().cloned().collect();
    while excluded.len() < 40 {
        excluded.insert(track_id(rng.below(n)));
    }
    let kinds = [ReactionKind::Like, ReactionKind::Skip, ReactionKind::Play];
    let reactions = (0..12)
        .map(|i| Reaction {
            user_id: members[rng.below(members.len())].user_id.clone(),
            track_id: history[i].clone(),
            kind: kinds[i % kinds.len()],
            at_ms: 3_600_000 - 120_000 * i as i64,
        })
        .collect();
    Room {
        members,
        excluded,
        history,
        reactions,
        now_ms: 3_600_000,
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("suggest");
    for &(tracks, members) in &[(100_000usize, 5usize), (100_000, 30), (1_000_000, 30)] {
        let synth = synth::catalog(tracks, 40, 2026);
        let cat = Catalog::from_rows(synth.rows.clone());
        let room = room(&synth, members);
        if tracks >= 1_000_000 {
            g.sample_size(10);
        }
        g.bench_with_input(
            BenchmarkId::new(format!("{members}_members"), tracks),
            &room,
            |b, room| b.iter(|| suggest::suggest(&cat, black_box(room), 10)),
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
