//! The scan: every track of the catalog against every member, in one pass.
//!
//! This is the only part that grows with the catalog, so it is written for
//! the machine: tracks go [`BLOCK`] at a time, and for each member each of
//! their feature terms is one loop over the block's column slice with the
//! term's constants hoisted, which the compiler turns into vector code
//! (`f32`, no branches: `max` as a comparison, the genre bonus as a
//! compare-and-select); on x86-64 with AVX2 the same code is compiled for
//! eight lanes. Per-block scratch stays in L1. Per track, only two things
//! are scalar: adding the artist term for tracks by an artist some member
//! loves or has reacted to (rare; found through a 4,096-bit filter on
//! artist ids), and offering to a heap the few keys that beat its minimum
//! (a block-wide comparison finds them first). The sums are the ones of
//! `Model::satisfaction`, in the same order, so the scan and the exact
//! model agree (a property test checks it).
//!
//! What it keeps: the best `k_group` tracks by group key, plus for each
//! member who can veto the best `k_member` tracks by `(s_m + score) / 2`
//! (vetoed or not), so that the fair selection has every member's
//! favourites to choose from; each kept track is then scored exactly.
//! Allocation per call: a few vectors of the members' size; nothing of the
//! catalog's.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::catalog::{Catalog, BLOCK};
use super::genre::GENRE_SLOTS;
use super::group::{aggregate, key, Candidate, Weights};
use super::taste::{clamp01, fmax, kernel, Model, RoomProfile, Term, FIT_RADIUS, ROOM_RADIUS};

/// A heap entry: higher key first; on equal keys the lower track index.
#[derive(Clone, Copy, Debug)]
struct Entry {
    key: f32,
    track: u32,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Entry) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Entry) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Entry) -> Ordering {
        self.key
            .total_cmp(&o.key)
            .then_with(|| o.track.cmp(&self.track))
    }
}

/// The best `k` entries seen (a min-heap of them), with the key a new
/// entry must beat cached as a plain float for the scan's comparisons.
struct TopK {
    k: usize,
    heap: BinaryHeap<Reverse<Entry>>,
    /// −∞ until full, then the smallest key kept.
    threshold: f32,
}

impl TopK {
    fn new(k: usize) -> TopK {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
            threshold: if k == 0 {
                f32::INFINITY
            } else {
                f32::NEG_INFINITY
            },
        }
    }

    /// Keep `e` if it is among the best `k` so far. Ties in key go to the
    /// lower track index, which the scan meets first, so callers may skip
    /// any key `<= threshold`.
    fn offer(&mut self, e: Entry) {
        if self.heap.len() < self.k {
            self.heap.push(Reverse(e));
        } else if let Some(mut min) = self.heap.peek_mut() {
            if e > min.0 {
                *min = Reverse(e);
            }
        }
        if self.heap.len() == self.k {
            self.threshold = self.heap.peek().map_or(f32::NEG_INFINITY, |m| m.0.key);
        }
    }
}

/// What the scan needs besides the catalog: see `Prepared` in `mod.rs`.
pub(crate) struct ScanInput<'a> {
    pub models: &'a [Model],
    pub weights: &'a Weights,
    pub room: &'a RoomProfile,
    /// Sorted track indexes never to keep.
    pub excluded: &'a [u32],
    /// Bit `a & 4095` set for every artist some member has an adjustment for.
    pub artist_filter: &'a [u64; 64],
}

/// `acc[l] = Σ w·max(0, |x_l − c| − h)²` over the block at `lo`.
#[inline]
fn block_distance(acc: &mut [f32; BLOCK], terms: &[Term], cat: &Catalog, lo: usize) {
    *acc = [0.0; BLOCK];
    for t in terms {
        let x: &[f32; BLOCK] = cat.column(t.feature)[lo..lo + BLOCK]
            .try_into()
            .expect("columns are padded to whole blocks");
        let (c, h, w) = (t.center, t.half, t.weight);
        for l in 0..BLOCK {
            let d = fmax((x[l] - c).abs() - h, 0.0);
            acc[l] += w * d * d;
        }
    }
}

fn block(col: &[f32], lo: usize) -> &[f32; BLOCK] {
    col[lo..lo + BLOCK]
        .try_into()
        .expect("columns are padded to whole blocks")
}

/// Scan the catalog; returns the kept candidates (distinct tracks, any
/// order) with every member's exact satisfaction.
pub(crate) fn scan(
    cat: &Catalog,
    input: &ScanInput<'_>,
    k_group: usize,
    k_member: usize,
) -> Vec<Candidate> {
    let mut group = TopK::new(k_group);
    let mut per_member: Vec<TopK> = input
        .models
        .iter()
        .map(|md| TopK::new(if md.can_veto { k_member } else { 0 }))
        .collect();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { scan_blocks_avx2(cat, input, &mut group, &mut per_member) };
        } else {
            scan_blocks(cat, input, &mut group, &mut per_member);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    scan_blocks(cat, input, &mut group, &mut per_member);
    candidates(cat, input, group, per_member)
}

/// [`scan_blocks`] compiled for AVX2 (eight lanes per instruction instead
/// of four); the same code, so the same results.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_blocks_avx2(
    cat: &Catalog,
    input: &ScanInput<'_>,
    group: &mut TopK,
    per_member: &mut [TopK],
) {
    scan_blocks(cat, input, group, per_member)
}

/// The pass over every block: fills the heaps.
#[inline(always)]
fn scan_blocks(cat: &Catalog, input: &ScanInput<'_>, group: &mut TopK, per_member: &mut [TopK]) {
    let models = input.models;
    let m = models.len();
    let total_alpha: f32 = input.weights.alpha.iter().sum();
    let inv_total = if total_alpha > 0.0 {
        1.0 / total_alpha
    } else {
        0.0
    };
    let inv_fit = 1.0 / (FIT_RADIUS * FIT_RADIUS);
    let inv_room = 1.0 / (ROOM_RADIUS * ROOM_RADIUS);
    // Each member's genre bonuses as (genre as f32, bonus), for a compare
    // and select per lane instead of a table lookup.
    let genres: Vec<Vec<(f32, f32)>> = models
        .iter()
        .map(|md| {
            (0..GENRE_SLOTS)
                .filter(|g| md.genre_bonus[*g] != 0.0)
                .map(|g| (g as f32, md.genre_bonus[g]))
                .collect()
        })
        .collect();

    let mut sat = vec![0f32; m * BLOCK];
    // Each member's own part before clamping, for the artist slow path.
    let mut raw = vec![0f32; m * BLOCK];
    let mut acc = [0f32; BLOCK];
    let mut lane_sat = vec![0f32; m];
    let mut lane_own = vec![0f32; m];
    let mut excluded = input.excluded.iter().peekable();
    let n = cat.len();

    for lo in (0..cat.padded_len()).step_by(BLOCK) {
        let known = block(cat.known_column(), lo);
        let pop = block(cat.popularity_column(), lo);
        let genre = block(cat.genre_f32_column(), lo);

        let mut room = [0f32; BLOCK];
        for (proto, sign) in [(&input.room.pos, 1.0f32), (&input.room.neg, -1.0)] {
            if let Some(p) = proto {
                block_distance(&mut acc, &p.terms, cat, lo);
                let s = sign * p.scale;
                for l in 0..BLOCK {
                    room[l] += s * kernel(acc[l], inv_room);
                }
            }
        }
        for l in 0..BLOCK {
            room[l] *= known[l];
        }

        let mut sum = [0f32; BLOCK];
        let mut worst = [-1f32; BLOCK];
        for (mi, md) in models.iter().enumerate() {
            let s: &mut [f32; BLOCK] = (&mut sat[mi * BLOCK..(mi + 1) * BLOCK])
                .try_into()
                .expect("BLOCK lanes per member");
            if md.terms.is_empty() {
                s.fill(md.w_fit * 0.0 + md.constant);
            } else {
                block_distance(&mut acc, &md.terms, cat, lo);
                let unknown = md.unknown_fit;
                for l in 0..BLOCK {
                    let k = kernel(acc[l], inv_fit);
                    let fit = known[l] * k + (1.0 - known[l]) * unknown;
                    s[l] = md.w_fit * fit + md.constant;
                }
            }
            let w_pop = md.w_pop;
            for l in 0..BLOCK {
                s[l] += w_pop * pop[l];
            }
            // A track has one genre: at most one of these adds non-zero,
            // exactly as the scalar path's table lookup.
            for &(g, bonus) in &genres[mi] {
                for l in 0..BLOCK {
                    s[l] += if genre[l] == g { bonus } else { 0.0 };
                }
            }
            let (a, w_room) = (input.weights.alpha[mi], md.w_room);
            let threshold = input.weights.misery[mi];
            raw[mi * BLOCK..(mi + 1) * BLOCK].copy_from_slice(s);
            for l in 0..BLOCK {
                let own = s[l];
                let v = clamp01(own + w_room * room[l]);
                s[l] = v;
                sum[l] += a * v;
                // Misery is judged on the member's own part.
                worst[l] = fmax(worst[l], threshold - clamp01(own));
            }
        }

        let mut score = [0f32; BLOCK];
        for l in 0..BLOCK {
            score[l] = sum[l] * inv_total;
        }
        for l in 0..BLOCK {
            let t = (lo + l) as u32;
            if lo + l >= n {
                score[l] = f32::NEG_INFINITY;
                continue;
            }
            while excluded.next_if(|e| **e < t).is_some() {}
            if excluded.peek() == Some(&&t) {
                score[l] = f32::NEG_INFINITY;
                continue;
            }
            let hit = cat
                .artist_ids(t as usize)
                .iter()
                .any(|a| input.artist_filter[(a >> 6) as usize & 63] & (1 << (a & 63)) != 0);
            if hit {
                // The same sums as `Model::satisfaction`, from the own part
                // already computed.
                for (mi, md) in models.iter().enumerate() {
                    let own = raw[mi * BLOCK + l];
                    let artist = md.artist_term(cat, t as usize);
                    let v = clamp01(own + md.w_room * room[l] + artist);
                    sat[mi * BLOCK + l] = v;
                    lane_sat[mi] = v;
                    lane_own[mi] = clamp01(own + artist);
                }
                (score[l], worst[l]) = aggregate(input.weights, &lane_sat, &lane_own);
            }
        }
        // Offers are rare once the heaps are full: a vector comparison
        // finds whether any lane of the block beats a heap at all.
        let mut keys = [0f32; BLOCK];
        let mut any = false;
        for l in 0..BLOCK {
            keys[l] = key(score[l], worst[l]);
            any |= keys[l] > group.threshold;
        }
        if any {
            offer_block(group, &keys, lo);
        }
        // Vetoed or not: with tolerance, a member's favourite may get its
        // turn later in the list.
        for (mi, heap) in per_member.iter_mut().enumerate() {
            let s = &sat[mi * BLOCK..(mi + 1) * BLOCK];
            let mut any = false;
            for l in 0..BLOCK {
                keys[l] = 0.5 * (s[l] + score[l]);
                any |= keys[l] > heap.threshold;
            }
            if any {
                offer_block(heap, &keys, lo);
            }
        }
    }
}

/// Offer each lane of a block whose key beats the heap.
fn offer_block(heap: &mut TopK, keys: &[f32; BLOCK], lo: usize) {
    for (l, k) in keys.iter().enumerate() {
        if *k > heap.threshold {
            heap.offer(Entry {
                key: *k,
                track: (lo + l) as u32,
            });
        }
    }
}

/// The kept tracks, each with every member's exact satisfaction.
fn candidates(
    cat: &Catalog,
    input: &ScanInput<'_>,
    group: TopK,
    per_member: Vec<TopK>,
) -> Vec<Candidate> {
    let models = input.models;
    let mut tracks: Vec<u32> = group.heap.into_iter().map(|e| e.0.track).collect();
    for heap in per_member {
        tracks.extend(heap.heap.into_iter().map(|e| e.0.track));
    }
    tracks.sort_unstable();
    tracks.dedup();
    tracks
        .into_iter()
        .map(|t| {
            let x = cat.features(super::catalog::TrackIx(t));
            let r = input.room.term(x.as_ref());
            let (sat, own) = models
                .iter()
                .map(|md| md.satisfaction(cat, t as usize, r))
                .unzip();
            Candidate { track: t, sat, own }
        })
        .collect()
}
