//! Frame serialization: an `update` (what every listener gets per op), a
//! 1,000-entry `snapshot` (what a joiner gets), and parsing client frames
//! (`cargo bench --bench frames`).

use chrono::Utc;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

use audotics_protocol::model::{
    Member, PlaylistRef, QueueEntry, Role, SessionRef, Snapshot, Track, You,
};
use audotics_protocol::{parse_client, Change, OpKind, ServerMsg};

fn track(i: usize) -> Track {
    Track {
        id: format!("cm3track{i:017}"),
        spotify_id: format!("4uLU6hMCjMI75M1A2tKUQ{i}"),
        name: format!("Track number {i}"),
        artists: vec!["Some Artist".into(), "Another Artist".into()],
        album: "An Album Title".into(),
        popularity: 57,
        duration_ms: None,
        cover_url: None,
    }
}

fn update() -> ServerMsg {
    ServerMsg::Update {
        version: 123_456,
        change: Change {
            op: OpKind::Add,
            entry_id: Some(uuid::Uuid::new_v4().to_string()),
            track: Some(track(7)),
            index: Some(42),
            from_index: None,
            to_index: None,
            by: Some("cm3user00000000000000001".into()),
            detail: None,
        },
        at: Utc::now(),
    }
}

fn snapshot(n: usize) -> ServerMsg {
    ServerMsg::Snapshot(Snapshot {
        version: 9_999,
        session: SessionRef {
            id: "cm3session000000000000001".into(),
            name: "Friday night".into(),
            active: true,
            host_id: "cm3user00000000000000001".into(),
        },
        playlist: PlaylistRef {
            id: "cm3playlist00000000000001".into(),
            name: "Friday night".into(),
            description: None,
            spotify_id: None,
        },
        queue: (0..n)
            .map(|i| QueueEntry {
                entry_id: uuid::Uuid::new_v4().to_string(),
                track: track(i),
                added_by: "cm3user00000000000000001".into(),
                added_at: Utc::now(),
                votes: Vec::new(),
                pinned: false,
            })
            .collect(),
        members: (0..20)
            .map(|i| Member {
                user_id: format!("cm3user{i:017}"),
                name: format!("Member {i}"),
                avatar: None,
                online: i % 2 == 0,
                role: Role::Member,
            })
            .collect(),
        you: You {
            user_id: "cm3user00000000000000001".into(),
            role: Role::Host,
        },
        party: Default::default(),
    })
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("frames");
    let u = update();
    g.throughput(Throughput::Bytes(u.to_json().len() as u64));
    g.bench_function("serialize_update", |b| b.iter(|| black_box(&u).to_json()));
    let s = snapshot(1_000);
    g.throughput(Throughput::Bytes(s.to_json().len() as u64));
    g.bench_function("serialize_snapshot_1000", |b| {
        b.iter(|| black_box(&s).to_json())
    });
    let frames = [
        (
            "parse_add",
            r#"{"type":"add","req":"r-000123","trackId":"cm3track00000000000000007"}"#,
        ),
        (
            "parse_reorder",
            r#"{"type":"reorder","req":"r-000124","entryId":"6f1c2a4e-8d3b-4c1a-9e7f-000000000001","toIndex":3,"baseVersion":77}"#,
        ),
        (
            "parse_join",
            r#"{"type":"join","sessionId":"cm3session000000000000001","token":"0123456789abcdef0123456789abcdef","since":42}"#,
        ),
        (
            "parse_add_track_meta",
            r#"{"type":"add","req":"r-9","track":{"spotifyId":"4uLU6hMCjMI75M1A2tKUQC","name":"Song","artists":["A","B"],"album":"Alb","popularity":50},"index":0}"#,
        ),
    ];
    for (name, f) in frames {
        g.throughput(Throughput::Bytes(f.len() as u64));
        g.bench_function(name, |b| b.iter(|| parse_client(black_box(f)).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
