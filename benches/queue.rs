//! The pure queue model: insert, move and remove on queues of 100, 1,000
//! and 10,000 entries (`cargo bench --bench queue`).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use uuid::Uuid;

use audotics_hub::hub::queue::Queue;

fn filled(n: usize) -> (Queue<u32>, Vec<Uuid>) {
    let mut q = Queue::new(n + 16);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = Uuid::from_u128(i as u128 + 1);
        q.insert(id, None, i as u32).unwrap();
        ids.push(id);
    }
    (q, ids)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue");
    for &n in &[100usize, 1_000, 10_000] {
        let (q, ids) = filled(n);
        let mid = ids[n / 2];
        // Insert in the middle, then undo it, so every iteration sees n entries.
        g.bench_with_input(BenchmarkId::new("insert_middle", n), &n, |b, &n| {
            let mut q = q.clone();
            let id = Uuid::from_u128(u128::MAX);
            b.iter(|| {
                let a = q.insert(black_box(id), Some(n / 2), 0).unwrap();
                q.undo(a);
            })
        });
        g.bench_with_input(BenchmarkId::new("append", n), &n, |b, _| {
            let mut q = q.clone();
            let id = Uuid::from_u128(u128::MAX);
            b.iter(|| {
                let a = q.insert(black_box(id), None, 0).unwrap();
                q.undo(a);
            })
        });
        // Move the middle entry to the front and back again.
        g.bench_with_input(BenchmarkId::new("move_middle_to_front", n), &n, |b, _| {
            let mut q = q.clone();
            b.iter(|| {
                let a = q.move_to(black_box(mid), 0).unwrap();
                q.undo(a);
            })
        });
        g.bench_with_input(BenchmarkId::new("remove_middle", n), &n, |b, _| {
            let mut q = q.clone();
            b.iter(|| {
                let a = q.remove(black_box(mid)).unwrap();
                q.undo(a);
            })
        });
        g.bench_with_input(BenchmarkId::new("index_of_last", n), &n, |b, _| {
            let last = ids[n - 1];
            b.iter(|| q.index_of(black_box(last)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
