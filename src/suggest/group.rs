//! The group strategy: average without misery, with a fairness term over
//! the session's sequence.
//!
//! Masthoff compared the ways a group's individual ratings can be combined
//! (Masthoff 2004, "Group modeling: selecting a sequence of television items
//! to suit a group of viewers", UMUAI 14; her chapter "Group recommender
//! systems: combining individual models" in the Recommender Systems
//! Handbook, 2011). Two of her strategies, together, match a party:
//! - **Average without misery**: rank by the members' average predicted
//!   satisfaction, but drop every item some member rates below a threshold,
//!   so nobody present has to sit through what they hate. Least misery
//!   alone (PolyLens: O'Connor, Cosley, Konstan and Riedl, ECSCW 2001)
//!   lets one member's lukewarm taste pull the whole list down; the plain
//!   average lets a majority steamroll a guest. Masthoff's threshold is 4 on
//!   a 1–10 scale, a third of the way up: [`Strategy::misery`] = 1/3 on
//!   0..1. Only members with a taste of their own can veto (cold members'
//!   predictions are guesses), and only on their own part of the
//!   prediction (the room's reactions move the ranking for everyone, they
//!   are nobody's veto). If the veto leaves too few tracks (a room of 30
//!   rarely agrees on everything), vetoed tracks follow, least miserable
//!   first, so a list is never empty.
//! - **Fairness** over a sequence: a party hears a sequence, and Masthoff &
//!   Gatt (UMUAI 16, 2006) model a member's satisfaction as accumulating
//!   over it with decay: a member who has just enjoyed several tracks
//!   minds one they dislike less. Each member's served satisfaction `u_m`
//!   is that decayed mean over what played and was queued (memory 0.7 per
//!   track: the last track counts 1, five back 0.24). Two terms use it:
//!   - weight: a member below the room's mean by `d` counts `1 + λ·d` in
//!     the average ([`Strategy::fairness`] λ = 4: 0.25 below counts
//!     double);
//!   - tolerance: a member ahead of the least-served member by `e` vetoes
//!     only below `misery·(1 − e/δ)` ([`Strategy::tolerance`] δ = 0.25: a
//!     quarter of the scale ahead, they let one through), so when tastes
//!     do not overlap at all the room takes turns instead of settling on
//!     compromises nobody enjoys.
//!
//!   - coverage: within one list, a pick that fits (predicted ≥ 0.6) members
//!     whom no earlier pick fits gains 0.5 × their share of the weights
//!     ([`Strategy::coverage`]): the proportionality notion of fairness of
//!     Serbos et al. ("Fairness in package-to-group recommendations", WWW
//!     2017), every member should find something of theirs in the list.
//!
//!   The list itself is built greedily: each pick counts as served when
//!   choosing the next, so the quiet guest's taste gets its turn within
//!   ten suggestions, not only after ten tracks have played.
//!
//! This module holds the strategy's arithmetic; `scan` applies it to the
//! whole catalog and [`select`] to the candidates the scan kept.

use super::catalog::Catalog;
use super::taste::Model;

/// The strategy's parameters; [`Strategy::default`] is the one the hub uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Strategy {
    /// A member (with a taste of their own) predicted below this vetoes.
    pub misery: f32,
    /// λ: weight `1 + λ·d` for a member served `d` below the room's mean.
    pub fairness: f32,
    /// δ: a member served `e` above the least-served member vetoes only
    /// below `misery·(1 − e/δ)`; 0: never relaxed.
    pub tolerance: f32,
    /// Decay of served satisfaction per track.
    pub memory: f32,
    /// A member "fits" a suggestion at this satisfaction or more.
    pub fit: f32,
    /// Proportionality: a pick that fits members no earlier pick of the
    /// list fits gains `coverage ×` their share of the weights.
    pub coverage: f32,
    /// At most one track per first artist in one list (while others remain).
    pub one_per_artist: bool,
}

impl Default for Strategy {
    fn default() -> Strategy {
        Strategy {
            misery: 1.0 / 3.0,
            fairness: 4.0,
            tolerance: 0.25,
            memory: 0.7,
            fit: 0.6,
            coverage: 0.5,
            one_per_artist: true,
        }
    }
}

/// Each member's decayed satisfaction over a sequence (Masthoff & Gatt):
/// `num_m / den` with `num_m ← memory·num_m + s_m`, `den ← memory·den + 1`.
#[derive(Clone, Debug)]
pub(crate) struct Served {
    num: Vec<f32>,
    den: f32,
    memory: f32,
}

/// Per-member fairness weight and misery threshold at one point of the
/// sequence. A member who cannot veto has threshold −1 (nobody's own part
/// is below it).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Weights {
    pub alpha: Vec<f32>,
    pub misery: Vec<f32>,
}

impl Served {
    pub fn new(members: usize, memory: f32) -> Served {
        Served {
            num: vec![0.0; members],
            den: 0.0,
            memory,
        }
    }

    /// One more track heard, with each member's satisfaction `sat`.
    pub fn push(&mut self, sat: &[f32]) {
        for (n, s) in self.num.iter_mut().zip(sat) {
            *n = self.memory * *n + s;
        }
        self.den = self.memory * self.den + 1.0;
    }

    /// The weights and thresholds now (see the module doc); before anything
    /// has played, weight 1 and the plain threshold for everyone who can
    /// veto.
    pub fn weights(&self, models: &[Model], strategy: &Strategy, out: &mut Weights) {
        out.alpha.clear();
        out.alpha.resize(models.len(), 1.0);
        out.misery.clear();
        out.misery.extend(
            models
                .iter()
                .map(|m| if m.can_veto { strategy.misery } else { -1.0 }),
        );
        let own = models.iter().filter(|m| m.can_veto).count();
        if self.den == 0.0 || own == 0 {
            return;
        }
        let served = |n: &f32| n / self.den;
        let mut mean = 0.0;
        let mut least = f32::INFINITY;
        for (m, n) in models.iter().zip(&self.num) {
            if m.can_veto {
                mean += served(n) / own as f32;
                least = least.min(served(n));
            }
        }
        for (i, (m, n)) in models.iter().zip(&self.num).enumerate() {
            if !m.can_veto {
                continue;
            }
            let u = served(n);
            out.alpha[i] = 1.0 + strategy.fairness * (mean - u).max(0.0);
            if strategy.tolerance > 0.0 {
                let ahead = ((u - least) / strategy.tolerance).min(1.0);
                out.misery[i] = strategy.misery * (1.0 - ahead);
            }
        }
    }
}

/// A candidate's group score from its members' satisfactions `sat`: the
/// fairness-weighted average, and the worst misery `max(threshold_m −
/// own_m)` on their own part `own` (≤ 0: nobody is miserable).
#[inline]
pub(crate) fn aggregate(w: &Weights, sat: &[f32], own: &[f32]) -> (f32, f32) {
    let mut sum = 0.0;
    let mut total = 0.0;
    let mut worst = -1.0f32;
    for (((a, t), s), o) in w.alpha.iter().zip(&w.misery).zip(sat).zip(own) {
        sum += a * s;
        total += a;
        worst = worst.max(t - o);
    }
    (if total > 0.0 { sum / total } else { 0.0 }, worst)
}

/// The ranking key: the score for a track nobody vetoes; below every such
/// track (score − 1 − misery < 0) for a vetoed one, least miserable first.
#[inline]
pub(crate) fn key(score: f32, worst: f32) -> f32 {
    if worst > 0.0 {
        score - 1.0 - worst
    } else {
        score
    }
}

/// A candidate the scan kept, with every member's satisfaction and own
/// part (see `Model::satisfaction`).
pub(crate) struct Candidate {
    pub track: u32,
    pub sat: Vec<f32>,
    pub own: Vec<f32>,
}

/// A pick: the candidate's index and its key when picked (the group score,
/// or below 0 if vetoed; without the coverage bonus).
pub(crate) struct Pick {
    pub candidate: usize,
    pub key: f32,
}

/// Choose up to `n` of `cands` greedily (see the module doc): each step
/// takes the best key under the current fairness weights and thresholds,
/// plus the coverage bonus, then counts the pick as served. A vetoed track
/// comes only when no other is left; with `one_per_artist`, a track sharing
/// its first artist with an earlier pick is passed over while any other
/// remains.
pub(crate) fn select(
    cat: &Catalog,
    models: &[Model],
    cands: &[Candidate],
    served: &Served,
    strategy: &Strategy,
    n: usize,
) -> Vec<Pick> {
    let mut served = served.clone();
    let mut w = Weights::default();
    let mut taken = vec![false; cands.len()];
    let mut artists: Vec<u32> = Vec::new();
    let mut covered: Vec<bool> = models.iter().map(|m| !m.can_veto).collect();
    let mut picks = Vec::with_capacity(n.min(cands.len()));
    while picks.len() < n {
        served.weights(models, strategy, &mut w);
        let total: f32 = w.alpha.iter().sum();
        type Order = (bool, bool, f32, std::cmp::Reverse<u32>);
        let mut best: Option<(Order, usize, f32)> = None;
        for (i, c) in cands.iter().enumerate() {
            if taken[i] {
                continue;
            }
            let (score, worst) = aggregate(&w, &c.sat, &c.own);
            let k = key(score, worst);
            let rank = if worst > 0.0 {
                k
            } else {
                let newly: f32 = c
                    .sat
                    .iter()
                    .zip(&covered)
                    .zip(&w.alpha)
                    .filter(|((s, done), _)| !**done && **s >= strategy.fit)
                    .map(|(_, a)| a)
                    .sum();
                k + strategy.coverage * newly / total
            };
            let fresh = !strategy.one_per_artist
                || cat
                    .artist_ids(c.track as usize)
                    .first()
                    .is_none_or(|a| !artists.contains(a));
            // Unvetoed first, then fresh artists, then the rank, then the
            // lower track index.
            let order = (worst <= 0.0, fresh, rank, std::cmp::Reverse(c.track));
            if best.as_ref().is_none_or(|(o, _, _)| order > *o) {
                best = Some((order, i, k));
            }
        }
        let Some(((_, _, _, std::cmp::Reverse(track)), i, k)) = best else {
            break;
        };
        taken[i] = true;
        if let Some(a) = cat.artist_ids(track as usize).first() {
            artists.push(*a);
        }
        served.push(&cands[i].sat);
        for (done, s) in covered.iter_mut().zip(&cands[i].sat) {
            *done |= *s >= strategy.fit;
        }
        picks.push(Pick {
            candidate: i,
            key: k,
        });
    }
    picks
}

#[cfg(test)]
mod tests {
    use super::super::genre::GENRE_SLOTS;
    use super::super::taste::Source;
    use super::*;

    fn model(can_veto: bool) -> Model {
        Model {
            terms: Vec::new(),
            w_fit: 0.0,
            unknown_fit: 0.0,
            constant: 0.5,
            w_pop: 0.0,
            w_room: 0.0,
            genre_bonus: [0.0; GENRE_SLOTS],
            artists: Vec::new(),
            can_veto,
            source: if can_veto {
                Source::Own
            } else {
                Source::Popularity
            },
        }
    }

    #[test]
    fn misery_vetoes_only_with_a_taste_of_ones_own() {
        let models = [model(true), model(true), model(false)];
        let mut w = Weights::default();
        Served::new(3, 0.7).weights(&models, &Strategy::default(), &mut w);
        assert_eq!(w.alpha, [1.0; 3]);
        assert_eq!(w.misery, [1.0 / 3.0, 1.0 / 3.0, -1.0]);
        let (score, worst) = aggregate(&w, &[0.9, 0.2, 0.1], &[0.9, 0.2, 0.1]);
        assert!((score - 0.4).abs() < 1e-6);
        assert!(worst > 0.0, "the second member vetoes");
        let (_, worst) = aggregate(&w, &[0.9, 0.5, 0.0], &[0.9, 0.5, 0.0]);
        assert!(worst <= 0.0, "a cold member does not veto");
        // The room's reactions lower the average but do not veto.
        let (score, worst) = aggregate(&w, &[0.9, 0.2, 0.4], &[0.9, 0.5, 0.4]);
        assert!((score - 0.5).abs() < 1e-6 && worst <= 0.0);
        // Every vetoed track ranks below every track nobody vetoes.
        assert!(key(1.0, 0.01) < key(0.0, -0.5));
        assert!(key(0.5, 0.1) > key(0.5, 0.2));
    }

    #[test]
    fn the_least_served_weighs_more_and_the_best_served_tolerate_more() {
        let models = [model(true), model(true), model(false)];
        let strategy = Strategy::default();
        let mut served = Served::new(3, 0.7);
        let mut w = Weights::default();
        served.push(&[0.9, 0.4, 0.0]);
        served.weights(&models, &strategy, &mut w);
        // Mean 0.65: the second member is 0.25 below it.
        assert_eq!(w.alpha[0], 1.0);
        assert!((w.alpha[1] - 2.0).abs() < 1e-5, "{w:?}");
        assert_eq!(w.alpha[2], 1.0);
        // The first is 0.5 ahead of the least served: no veto this turn.
        assert_eq!(w.misery, [0.0, 1.0 / 3.0, -1.0]);
        served.push(&[0.5, 0.8, 0.0]);
        served.weights(&models, &strategy, &mut w);
        assert!(w.misery[0] > 0.0 && w.misery[0] < 1.0 / 3.0, "{w:?}");
        let off = Strategy {
            fairness: 0.0,
            tolerance: 0.0,
            ..strategy
        };
        served.weights(&models, &off, &mut w);
        assert_eq!(w.alpha, [1.0; 3]);
        assert_eq!(w.misery, [1.0 / 3.0, 1.0 / 3.0, -1.0]);
    }
}
