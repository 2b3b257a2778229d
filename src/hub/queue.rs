//! Pure ordering rules for a group session's shared play queue.
//!
//! This module exists so the queue rules (insert / remove / move, capacity, order keys and
//! exact undo) live in plain synchronous code that can be unit- and property-tested in
//! isolation. The session actor only orchestrates: it applies an op here, persists the
//! returned [`Applied`] (O(1) rows per op thanks to [`Position`] keys), broadcasts it, and
//! calls [`Queue::undo`] if the database commit fails.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Base-62 digits in ASCII order, so byte-wise comparison of keys equals numeric order.
const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE: usize = DIGITS.len();
const ZERO: u8 = b'0';
const MAX_DIGIT: u8 = b'z';
/// The smallest integer part (`'A'` + 26 zeros). It is never a key on its own, which
/// guarantees there is always room to prepend (by bisecting its fractional part).
const SMALLEST_INTEGER: &[u8] = b"A00000000000000000000000000";
/// Key given to the first entry of an empty queue (integer 0).
const FIRST_KEY: &[u8] = b"a0";

/// Order key of a queue entry: a fractional index over the base-62 alphabet `0-9A-Za-z`.
///
/// Byte-wise (lexicographic) order of keys is queue order, so the database stores it as
/// `TEXT COLLATE "C"` and a move rewrites only the moved row.
///
/// Format (the scheme of Greenspan's "Implementing Fractional Indexing"): an *integer part*
/// whose head letter encodes its length (`a`..`z` = 2..27 chars for 0 and up, `Z`..`A` =
/// 2..27 chars for negatives), followed by an optional *fractional part* that never ends in
/// `'0'`. Key growth:
/// - appending / prepending increments / decrements the integer part, so `n` appends give
///   keys of about `2 + log62(n)` chars (62 keys of 2 chars, 3,844 of 3, 238,328 of 4);
/// - inserting between two keys bisects, adding roughly one char per 5-6 inserts into the
///   *same* gap (adversarial worst case); ordinary scattered inserts stay short.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Position(String);

impl Position {
    /// A key strictly between `before` and `after` (`None` = open end), used for every insert
    /// and move so only one row changes.
    ///
    /// # Panics
    /// If `before >= after` (a caller bug: queue keys are kept strictly increasing).
    pub fn between(before: Option<&Position>, after: Option<&Position>) -> Position {
        match Self::try_between(before, after) {
            Ok(p) => p,
            Err(e) => panic!("Position::between: {e}"),
        }
    }

    /// Like [`Position::between`] but reports `before >= after` as
    /// [`QueueError::BadPosition`] instead of panicking.
    pub fn try_between(
        before: Option<&Position>,
        after: Option<&Position>,
    ) -> Result<Position, QueueError> {
        // (A `match` rather than a let-chain keeps this file edition-2021 compatible.)
        match (before, after) {
            (Some(a), Some(b)) if a >= b => {
                return Err(QueueError::BadPosition(format!("{a} is not before {b}")));
            }
            _ => {}
        }
        let key = key_between(
            before.map(|p| p.0.as_bytes()),
            after.map(|p| p.0.as_bytes()),
        );
        Ok(Position(
            String::from_utf8(key).expect("keys are built from ASCII digits"),
        ))
    }

    /// The raw key, for binding to the database column.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parse a stored key, rejecting anything [`Position::between`] could not have produced
    /// (bad alphabet, empty, truncated integer part, fractional part ending in `'0'`).
    pub fn parse(s: &str) -> Result<Position, QueueError> {
        validate_key(s.as_bytes())
            .map_err(|why| QueueError::BadPosition(format!("{s:?}: {why}")))?;
        Ok(Position(s.to_owned()))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Position {
    type Error = QueueError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        validate_key(s.as_bytes())
            .map_err(|why| QueueError::BadPosition(format!("{s:?}: {why}")))?;
        Ok(Position(s))
    }
}

impl From<Position> for String {
    fn from(p: Position) -> String {
        p.0
    }
}

fn digit_value(c: u8) -> Option<usize> {
    match c {
        b'0'..=b'9' => Some(usize::from(c - b'0')),
        b'A'..=b'Z' => Some(usize::from(c - b'A') + 10),
        b'a'..=b'z' => Some(usize::from(c - b'a') + 36),
        _ => None,
    }
}

/// Digit value of a byte already known to be in the alphabet.
fn dv(c: u8) -> usize {
    digit_value(c).expect("validated base-62 digit")
}

fn integer_len(head: u8) -> Option<usize> {
    match head {
        b'a'..=b'z' => Some(usize::from(head - b'a') + 2),
        b'A'..=b'Z' => Some(usize::from(b'Z' - head) + 2),
        _ => None,
    }
}

fn validate_key(key: &[u8]) -> Result<(), &'static str> {
    let head = *key.first().ok_or("empty key")?;
    if key.iter().any(|&c| digit_value(c).is_none()) {
        return Err("character outside 0-9A-Za-z");
    }
    let int_len = integer_len(head).ok_or("key must start with a letter")?;
    if key.len() < int_len {
        return Err("integer part too short for its head letter");
    }
    if key == SMALLEST_INTEGER {
        return Err("reserved smallest integer");
    }
    if key.len() > int_len && key.last() == Some(&ZERO) {
        return Err("fractional part ends in '0'");
    }
    Ok(())
}

/// Split a valid key into (integer part, fractional part).
fn split_key(key: &[u8]) -> (&[u8], &[u8]) {
    key.split_at(integer_len(key[0]).expect("validated key"))
}

/// Midpoint of two fractional parts `a < b` (`b = None` means 1). Neither ends in '0';
/// neither does the result.
fn midpoint(mut a: &[u8], mut b: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        if let Some(bb) = b {
            // Strip the common prefix, treating `a` as padded with zeros.
            let n = bb
                .iter()
                .enumerate()
                .take_while(|&(i, &c)| a.get(i).copied().unwrap_or(ZERO) == c)
                .count();
            out.extend_from_slice(&bb[..n]);
            a = a.get(n..).unwrap_or(&[]);
            b = Some(&bb[n..]);
        }
        let da = a.first().map_or(0, |&c| dv(c));
        let db = match b {
            Some(bb) => dv(bb[0]),
            None => BASE,
        };
        if db - da > 1 {
            out.push(DIGITS[(da + db).div_ceil(2)]);
            return out;
        }
        // First digits are consecutive.
        match b {
            Some(bb) if bb.len() > 1 => {
                out.push(bb[0]);
                return out;
            }
            _ => {
                out.push(DIGITS[da]);
                a = a.get(1..).unwrap_or(&[]);
                b = None;
            }
        }
    }
}

/// `x + 1` for an integer part; `None` once the largest integer (`'z'` + 26 'z') is reached.
fn increment_integer(x: &[u8]) -> Option<Vec<u8>> {
    let head = x[0];
    let mut digits = x[1..].to_vec();
    for d in digits.iter_mut().rev() {
        let v = dv(*d) + 1;
        if v < BASE {
            *d = DIGITS[v];
            return Some([&[head][..], &digits].concat());
        }
        *d = ZERO;
    }
    match head {
        b'Z' => Some(FIRST_KEY.to_vec()),
        b'z' => None,
        _ => {
            let h = head + 1;
            if h > b'a' {
                digits.push(ZERO);
            } else {
                digits.pop();
            }
            Some([&[h][..], &digits].concat())
        }
    }
}

/// `x - 1` for an integer part; `None` below the smallest integer.
fn decrement_integer(x: &[u8]) -> Option<Vec<u8>> {
    let head = x[0];
    let mut digits = x[1..].to_vec();
    for d in digits.iter_mut().rev() {
        let v = dv(*d);
        if v > 0 {
            *d = DIGITS[v - 1];
            return Some([&[head][..], &digits].concat());
        }
        *d = MAX_DIGIT;
    }
    match head {
        b'a' => Some(b"Zz".to_vec()),
        b'A' => None,
        _ => {
            let h = head - 1;
            if h < b'Z' {
                digits.push(MAX_DIGIT);
            } else {
                digits.pop();
            }
            Some([&[h][..], &digits].concat())
        }
    }
}

/// Core of [`Position::between`]; inputs are valid keys with `a < b`.
fn key_between(a: Option<&[u8]>, b: Option<&[u8]>) -> Vec<u8> {
    match (a, b) {
        (None, None) => FIRST_KEY.to_vec(),
        (None, Some(b)) => {
            let (ib, fb) = split_key(b);
            if ib == SMALLEST_INTEGER {
                return [ib, &midpoint(&[], Some(fb))].concat();
            }
            if !fb.is_empty() {
                return ib.to_vec();
            }
            match decrement_integer(ib) {
                Some(d) if d != SMALLEST_INTEGER => d,
                _ => [SMALLEST_INTEGER, &midpoint(&[], None)].concat(),
            }
        }
        (Some(a), None) => {
            let (ia, fa) = split_key(a);
            increment_integer(ia).unwrap_or_else(|| [ia, &midpoint(fa, None)].concat())
        }
        (Some(a), Some(b)) => {
            let (ia, fa) = split_key(a);
            let (ib, fb) = split_key(b);
            if ia == ib {
                return [ia, &midpoint(fa, Some(fb))].concat();
            }
            match increment_integer(ia) {
                Some(i) if i.as_slice() < b => i,
                _ => [ia, &midpoint(fa, None)].concat(),
            }
        }
    }
}

/// One queued entry. `id` identifies the entry (not the track: the same track may be queued
/// twice); `item` is the caller's payload (track, added-by, added-at).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry<T> {
    pub id: Uuid,
    pub position: Position,
    pub item: T,
}

/// Why a queue op was rejected. A rejected op never changes the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueError {
    /// Insert index > len, or move target >= len.
    IndexOutOfRange { index: usize, len: usize },
    /// No entry with this id.
    NotFound(Uuid),
    /// The queue already holds `cap` entries.
    Full { cap: usize },
    /// An entry with this id already exists.
    DuplicateEntry(Uuid),
    /// A stored or supplied order key is malformed, duplicated, or out of order.
    BadPosition(String),
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::IndexOutOfRange { index, len } => {
                write!(f, "queue index {index} out of range (len {len})")
            }
            QueueError::NotFound(id) => write!(f, "queue entry {id} not found"),
            QueueError::Full { cap } => write!(f, "queue is full ({cap} entries)"),
            QueueError::DuplicateEntry(id) => write!(f, "queue entry {id} already exists"),
            QueueError::BadPosition(why) => write!(f, "bad queue position: {why}"),
        }
    }
}

impl std::error::Error for QueueError {}

/// What a successful op did: enough to persist it, broadcast it and [`Queue::undo`] it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied<T> {
    /// `entry` now sits at `index`.
    Inserted { index: usize, entry: Entry<T> },
    /// `entry` was taken out of `index`.
    Removed { index: usize, entry: Entry<T> },
    /// Entry `id` went from index `from` to `to` (its index after the move) and its key
    /// changed from `old_position` to `new_position` (equal when `from == to`).
    Moved {
        id: Uuid,
        from: usize,
        to: usize,
        old_position: Position,
        new_position: Position,
    },
}

impl<T> Applied<T> {
    /// Id of the entry the op touched.
    pub fn id(&self) -> Uuid {
        match self {
            Applied::Inserted { entry, .. } | Applied::Removed { entry, .. } => entry.id,
            Applied::Moved { id, .. } => *id,
        }
    }
}

/// The ordered play queue of one session, capped at `cap` entries.
///
/// Invariants: ids are unique and positions strictly increase along `entries`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queue<T> {
    entries: Vec<Entry<T>>,
    cap: usize,
}

impl<T> Queue<T> {
    /// An empty queue that accepts at most `cap` entries.
    pub fn new(cap: usize) -> Self {
        Queue {
            entries: Vec::new(),
            cap,
        }
    }

    /// Rebuild a queue from storage rows in any order (sorted here by position).
    ///
    /// Rejects more than `cap` rows ([`QueueError::Full`]), repeated ids
    /// ([`QueueError::DuplicateEntry`]) and repeated positions ([`QueueError::BadPosition`]).
    pub fn from_entries(mut entries: Vec<Entry<T>>, cap: usize) -> Result<Self, QueueError> {
        if entries.len() > cap {
            return Err(QueueError::Full { cap });
        }
        let mut ids = HashSet::with_capacity(entries.len());
        if let Some(e) = entries.iter().find(|e| !ids.insert(e.id)) {
            return Err(QueueError::DuplicateEntry(e.id));
        }
        entries.sort_unstable_by(|x, y| x.position.cmp(&y.position));
        if let Some(w) = entries.windows(2).find(|w| w[0].position == w[1].position) {
            return Err(QueueError::BadPosition(format!(
                "duplicate position {}",
                w[0].position
            )));
        }
        Ok(Queue { entries, cap })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the queue has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Maximum number of entries.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Entries in play order.
    pub fn entries(&self) -> &[Entry<T>] {
        &self.entries
    }

    /// The payloads, mutably (ids and positions stay untouched, so order
    /// cannot change).
    pub fn items_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.entries.iter_mut().map(|e| &mut e.item)
    }

    /// The payload of entry `id`, mutably (its place cannot change).
    pub fn item_mut(&mut self, id: Uuid) -> Option<&mut T> {
        self.entries
            .iter_mut()
            .find(|e| e.id == id)
            .map(|e| &mut e.item)
    }

    /// Index of entry `id`, if queued.
    pub fn index_of(&self, id: Uuid) -> Option<usize> {
        self.entries.iter().position(|e| e.id == id)
    }

    /// Entry `id` with its current index, if queued.
    pub fn get(&self, id: Uuid) -> Option<(usize, &Entry<T>)> {
        self.entries.iter().enumerate().find(|(_, e)| e.id == id)
    }

    /// Remove entry `id`.
    pub fn remove(&mut self, id: Uuid) -> Result<Applied<T>, QueueError> {
        let index = self.index_of(id).ok_or(QueueError::NotFound(id))?;
        let entry = self.entries.remove(index);
        Ok(Applied::Removed { index, entry })
    }

    /// Move entry `id` so it ends up at `to_index` (0..len), giving it a fresh key between
    /// its new neighbours. Moving to its current index is a reported no-op that keeps the key.
    ///
    /// Errors, checked in this order: [`QueueError::NotFound`], [`QueueError::IndexOutOfRange`].
    pub fn move_to(&mut self, id: Uuid, to_index: usize) -> Result<Applied<T>, QueueError> {
        let from = self.index_of(id).ok_or(QueueError::NotFound(id))?;
        let len = self.entries.len();
        if to_index >= len {
            return Err(QueueError::IndexOutOfRange {
                index: to_index,
                len,
            });
        }
        let old_position = self.entries[from].position.clone();
        let to = to_index;
        let new_position = if from == to {
            old_position.clone()
        } else {
            // Neighbours the entry will have once it sits at `to`.
            let (before, after) = if from < to {
                (Some(to), to + 1)
            } else {
                (to.checked_sub(1), to)
            };
            Position::between(
                before.map(|i| &self.entries[i].position),
                self.entries.get(after).map(|e| &e.position),
            )
        };
        self.entries[from].position = new_position.clone();
        self.shift(from, to);
        Ok(Applied::Moved {
            id,
            from,
            to,
            old_position,
            new_position,
        })
    }

    /// Exactly revert `applied`, which must come from the most recent not-yet-undone op
    /// (undo several in LIFO order). Used when the database commit fails so memory matches
    /// storage again. Out-of-order use is a logic bug: it debug-asserts and otherwise
    /// reverts by id on a best-effort basis.
    pub fn undo(&mut self, applied: Applied<T>) {
        match applied {
            Applied::Inserted { index, entry } => {
                if let Some(at) = self.locate_for_undo(index, entry.id) {
                    self.entries.remove(at);
                }
            }
            Applied::Removed { index, entry } => {
                debug_assert!(index <= self.entries.len(), "undo out of LIFO order");
                debug_assert!(self.index_of(entry.id).is_none(), "undo out of LIFO order");
                let at = index.min(self.entries.len());
                self.entries.insert(at, entry);
            }
            Applied::Moved {
                id,
                from,
                to,
                old_position,
                ..
            } => {
                if let Some(at) = self.locate_for_undo(to, id) {
                    self.entries[at].position = old_position;
                    let back = from.min(self.entries.len() - 1);
                    self.shift(at, back);
                }
            }
        }
    }

    fn locate_for_undo(&self, index: usize, id: Uuid) -> Option<usize> {
        let exact = self.entries.get(index).is_some_and(|e| e.id == id);
        debug_assert!(exact, "undo out of LIFO order");
        if exact {
            Some(index)
        } else {
            self.index_of(id)
        }
    }

    /// Move the entry at `from` to `to`, shifting the ones in between by one.
    fn shift(&mut self, from: usize, to: usize) {
        if from < to {
            self.entries[from..=to].rotate_left(1);
        } else if to < from {
            self.entries[to..=from].rotate_right(1);
        }
    }
}

impl<T: Clone> Queue<T> {
    /// Insert a new entry at `index` (`None` = append), keyed between its new neighbours.
    ///
    /// Errors, checked in this order: [`QueueError::Full`] (len == cap),
    /// [`QueueError::IndexOutOfRange`] (index > len), [`QueueError::DuplicateEntry`].
    pub fn insert(
        &mut self,
        id: Uuid,
        index: Option<usize>,
        item: T,
    ) -> Result<Applied<T>, QueueError> {
        let len = self.entries.len();
        if len >= self.cap {
            return Err(QueueError::Full { cap: self.cap });
        }
        let index = index.unwrap_or(len);
        if index > len {
            return Err(QueueError::IndexOutOfRange { index, len });
        }
        if self.index_of(id).is_some() {
            return Err(QueueError::DuplicateEntry(id));
        }
        let position = Position::between(
            index.checked_sub(1).map(|i| &self.entries[i].position),
            self.entries.get(index).map(|e| &e.position),
        );
        let entry = Entry { id, position, item };
        self.entries.insert(index, entry.clone());
        Ok(Applied::Inserted { index, entry })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pos(s: &str) -> Position {
        Position::parse(s).unwrap()
    }

    fn uid(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn between(a: Option<&str>, b: Option<&str>) -> String {
        let a = a.map(pos);
        let b = b.map(pos);
        let m = Position::between(a.as_ref(), b.as_ref());
        if let Some(a) = &a {
            assert!(a < &m, "{a} < {m}");
        }
        if let Some(b) = &b {
            assert!(&m < b, "{m} < {b}");
        }
        Position::parse(m.as_str()).expect("result must be a valid key");
        m.0
    }

    fn assert_sorted<T>(q: &Queue<T>) {
        for w in q.entries().windows(2) {
            assert!(
                w[0].position < w[1].position,
                "{} !< {}",
                w[0].position,
                w[1].position
            );
        }
    }

    fn ids<T>(q: &Queue<T>) -> Vec<Uuid> {
        q.entries().iter().map(|e| e.id).collect()
    }

    /// Queue with ids 1..=n (items = id as u32) appended in order.
    fn filled(n: u128, cap: usize) -> Queue<u32> {
        let mut q = Queue::new(cap);
        for i in 1..=n {
            q.insert(uid(i), None, i as u32).unwrap();
        }
        q
    }

    // ---- Position ----

    #[test]
    fn between_open_ends() {
        assert_eq!(between(None, None), "a0");
        assert_eq!(between(Some("a0"), None), "a1");
        assert_eq!(between(None, Some("a0")), "Zz");
        assert_eq!(between(Some("az"), None), "b00");
        assert_eq!(between(None, Some("b00")), "az");
        assert_eq!(between(Some("Zz"), None), "a0");
        assert_eq!(between(None, Some("Z0")), "Yzz");
        assert_eq!(between(Some("Yzz"), None), "Z0");
        assert_eq!(between(None, Some("a0V")), "a0");
        assert_eq!(between(Some("a0V"), None), "a1");
    }

    #[test]
    fn between_adjacent_keys() {
        assert_eq!(between(Some("a0"), Some("a1")), "a0V");
        assert_eq!(between(Some("a0"), Some("a01")), "a00V");
        assert_eq!(between(Some("a0"), Some("a0V")), "a0G");
        assert_eq!(between(Some("a0V"), Some("a0W")), "a0VV");
        assert_eq!(between(Some("a1"), Some("a1V")), "a1G");
        assert_eq!(between(Some("a0z"), Some("a1")), "a0zV");
        assert_eq!(between(Some("a0"), Some("a2")), "a1");
        assert_eq!(between(Some("a0"), Some("a1V")), "a1");
        assert_eq!(between(Some("az"), Some("b00")), "azV");
        assert_eq!(between(Some("Zz"), Some("a0")), "ZzV");
    }

    #[test]
    fn between_extremes_never_exhaust() {
        let max_int = format!("z{}", "z".repeat(26));
        let min_int = std::str::from_utf8(SMALLEST_INTEGER).unwrap().to_owned();
        // Past the largest integer: bisect the fraction towards 1.
        assert_eq!(between(Some(&max_int), None), format!("{max_int}V"));
        // Before the smallest integer: bisect its fraction towards 0.
        assert_eq!(
            between(None, Some(&format!("{min_int}V"))),
            format!("{min_int}G")
        );
        // Decrementing onto the reserved smallest integer yields a fraction instead.
        let min_plus_one = format!("A{}1", "0".repeat(25));
        assert_eq!(between(None, Some(&min_plus_one)), format!("{min_int}V"));
        assert_eq!(
            between(None, Some(&format!("{min_int}1"))),
            format!("{min_int}0V")
        );
    }

    #[test]
    fn between_long_keys() {
        let long_a = format!("a0{}1", "0".repeat(300));
        let long_b = format!("a0{}2", "0".repeat(300));
        let m = between(Some(&long_a), Some(&long_b));
        assert_eq!(m, format!("{long_a}V"));
        let z = format!("a0{}", "z".repeat(300));
        assert_eq!(between(Some(&z), Some("a1")), format!("{z}V"));
        assert_eq!(between(Some(&z), None), "a1");
    }

    #[test]
    #[should_panic(expected = "is not before")]
    fn between_panics_when_out_of_order() {
        Position::between(Some(&pos("a1")), Some(&pos("a0")));
    }

    #[test]
    fn try_between_rejects_equal_and_reversed() {
        let a = pos("a1");
        assert!(matches!(
            Position::try_between(Some(&a), Some(&a)),
            Err(QueueError::BadPosition(_))
        ));
        assert!(matches!(
            Position::try_between(Some(&a), Some(&pos("a0"))),
            Err(QueueError::BadPosition(_))
        ));
    }

    #[test]
    fn parse_validation() {
        for ok in [
            "a0",
            "a0V",
            "b00",
            "Zz",
            "Yzz1",
            "zzzzzzzzzzzzzzzzzzzzzzzzzzz",
            "A000000000000000000000000001",
        ] {
            assert_eq!(Position::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "a",
            "b0",
            "0a",
            "a00",
            "a0V0",
            "a0 ",
            "a-1",
            "aé",
            "A00000000000000000000000000",
        ] {
            assert!(
                matches!(Position::parse(bad), Err(QueueError::BadPosition(_))),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn serde_roundtrip_validates() {
        use serde::de::value::{Error as DeError, StrDeserializer};
        use serde::de::IntoDeserializer;
        let de: StrDeserializer<DeError> = "a0V".into_deserializer();
        assert_eq!(Position::deserialize(de).unwrap(), pos("a0V"));
        let de: StrDeserializer<DeError> = "a00".into_deserializer();
        assert!(Position::deserialize(de).is_err());
        assert_eq!(String::from(pos("b01")), "b01");
        assert_eq!(pos("b01").to_string(), "b01");
    }

    // ---- Queue ops ----

    #[test]
    fn insert_append_prepend_middle() {
        let mut q = Queue::new(10);
        assert!(q.is_empty());
        let a = q.insert(uid(1), None, 10).unwrap();
        assert_eq!(
            a,
            Applied::Inserted {
                index: 0,
                entry: Entry {
                    id: uid(1),
                    position: pos("a0"),
                    item: 10
                }
            }
        );
        q.insert(uid(2), None, 20).unwrap();
        q.insert(uid(3), Some(0), 30).unwrap();
        let a = q.insert(uid(4), Some(2), 40).unwrap();
        assert!(matches!(a, Applied::Inserted { index: 2, .. }));
        assert_eq!(a.id(), uid(4));
        q.insert(uid(5), Some(4), 50).unwrap(); // index == len appends
        assert_eq!(ids(&q), vec![uid(3), uid(1), uid(4), uid(2), uid(5)]);
        assert_eq!(q.len(), 5);
        assert_eq!(q.cap(), 10);
        assert_eq!(q.get(uid(4)).map(|(i, e)| (i, e.item)), Some((2, 40)));
        assert_eq!(q.get(uid(9)), None);
        assert_sorted(&q);
    }

    #[test]
    fn insert_errors_leave_queue_unchanged() {
        let mut q = filled(3, 4);
        let before = q.clone();
        assert_eq!(
            q.insert(uid(9), Some(4), 0),
            Err(QueueError::IndexOutOfRange { index: 4, len: 3 })
        );
        assert_eq!(
            q.insert(uid(2), None, 0),
            Err(QueueError::DuplicateEntry(uid(2)))
        );
        assert_eq!(q, before);
        q.insert(uid(4), None, 4).unwrap();
        let before = q.clone();
        assert_eq!(q.insert(uid(9), None, 0), Err(QueueError::Full { cap: 4 }));
        // Full is reported before the other errors.
        assert_eq!(
            q.insert(uid(1), Some(99), 0),
            Err(QueueError::Full { cap: 4 })
        );
        assert_eq!(q, before);
        let mut zero = Queue::new(0);
        assert_eq!(
            zero.insert(uid(1), None, 0),
            Err(QueueError::Full { cap: 0 })
        );
    }

    #[test]
    fn remove_and_not_found() {
        let mut q = filled(3, 10);
        let e2 = q.entries()[1].clone();
        assert_eq!(
            q.remove(uid(2)),
            Ok(Applied::Removed {
                index: 1,
                entry: e2
            })
        );
        assert_eq!(ids(&q), vec![uid(1), uid(3)]);
        let before = q.clone();
        assert_eq!(q.remove(uid(2)), Err(QueueError::NotFound(uid(2))));
        assert_eq!(q, before);
    }

    #[test]
    fn move_forward_backward_and_same() {
        let mut q = filled(5, 10);
        let a = q.move_to(uid(1), 3).unwrap();
        assert!(matches!(a, Applied::Moved { from: 0, to: 3, .. }));
        assert_eq!(ids(&q), [2, 3, 4, 1, 5].map(uid));
        assert_sorted(&q);
        q.move_to(uid(3), 0).unwrap();
        assert_eq!(ids(&q), [3, 2, 4, 1, 5].map(uid));
        assert_sorted(&q);
        q.move_to(uid(1), 4).unwrap();
        assert_eq!(ids(&q), [3, 2, 4, 5, 1].map(uid));
        q.move_to(uid(5), 4).unwrap();
        assert_eq!(ids(&q), [3, 2, 4, 1, 5].map(uid));
        assert_sorted(&q);
        let before = q.clone();
        let a = q.move_to(uid(4), 2).unwrap();
        let old = before.entries()[2].position.clone();
        assert_eq!(
            a,
            Applied::Moved {
                id: uid(4),
                from: 2,
                to: 2,
                old_position: old.clone(),
                new_position: old
            }
        );
        assert_eq!(q, before);
    }

    #[test]
    fn move_errors_leave_queue_unchanged() {
        let mut q = filled(3, 10);
        let before = q.clone();
        assert_eq!(q.move_to(uid(9), 0), Err(QueueError::NotFound(uid(9))));
        assert_eq!(
            q.move_to(uid(1), 3),
            Err(QueueError::IndexOutOfRange { index: 3, len: 3 })
        );
        // NotFound is reported before IndexOutOfRange.
        assert_eq!(q.move_to(uid(9), 7), Err(QueueError::NotFound(uid(9))));
        assert_eq!(q, before);
    }

    #[test]
    fn undo_each_op_kind() {
        let mut q = filled(4, 10);
        let start = q.clone();
        let ops = [
            q.insert(uid(7), Some(1), 7).unwrap(),
            q.move_to(uid(1), 4).unwrap(),
            q.remove(uid(3)).unwrap(),
            q.move_to(uid(4), 0).unwrap(),
            q.move_to(uid(4), 0).unwrap(),
            q.insert(uid(8), None, 8).unwrap(),
            q.remove(uid(7)).unwrap(),
        ];
        for op in ops.into_iter().rev() {
            q.undo(op);
            assert_sorted(&q);
        }
        assert_eq!(q, start);
    }

    #[test]
    fn from_entries_sorts_and_validates() {
        let q = filled(5, 10);
        let mut shuffled = q.entries().to_vec();
        shuffled.reverse();
        shuffled.swap(1, 3);
        assert_eq!(Queue::from_entries(shuffled.clone(), 10).unwrap(), q);
        assert_eq!(
            Queue::from_entries(shuffled.clone(), 5).unwrap().entries(),
            q.entries()
        );
        assert_eq!(
            Queue::from_entries(shuffled.clone(), 4),
            Err(QueueError::Full { cap: 4 })
        );
        let mut dup_id = shuffled.clone();
        dup_id[0].id = dup_id[2].id;
        assert_eq!(
            Queue::from_entries(dup_id.clone(), 10),
            Err(QueueError::DuplicateEntry(dup_id[0].id))
        );
        let mut dup_pos = shuffled;
        dup_pos[0].position = dup_pos[4].position.clone();
        assert!(matches!(
            Queue::from_entries(dup_pos, 10),
            Err(QueueError::BadPosition(_))
        ));
        assert_eq!(Queue::<u32>::from_entries(vec![], 0).unwrap().len(), 0);
    }

    #[test]
    fn error_display() {
        let id = uid(1);
        assert_eq!(
            QueueError::IndexOutOfRange { index: 5, len: 2 }.to_string(),
            "queue index 5 out of range (len 2)"
        );
        assert_eq!(
            QueueError::NotFound(id).to_string(),
            format!("queue entry {id} not found")
        );
        assert_eq!(
            QueueError::Full { cap: 3 }.to_string(),
            "queue is full (3 entries)"
        );
        assert_eq!(
            QueueError::DuplicateEntry(id).to_string(),
            format!("queue entry {id} already exists")
        );
        let e: Box<dyn std::error::Error> = Box::new(QueueError::BadPosition("x".into()));
        assert_eq!(e.to_string(), "bad queue position: x");
    }

    // ---- Key growth ----

    fn max_key_len<T>(q: &Queue<T>) -> usize {
        q.entries()
            .iter()
            .map(|e| e.position.as_str().len())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn ten_thousand_appends_stay_short() {
        // 62 two-char keys + 3,844 three-char keys, then four-char keys (238,328 of them).
        let q = filled(10_000, 10_000);
        assert_sorted(&q);
        assert_eq!(max_key_len(&q), 4);
    }

    #[test]
    fn thousand_prepends_stay_short() {
        // 62 two-char keys (Zz..Z0) + 3,844 three-char keys (Yzz..Y00).
        let mut q = Queue::new(1_000);
        for i in 0..1_000 {
            q.insert(uid(i), Some(0), ()).unwrap();
        }
        assert_sorted(&q);
        assert!(max_key_len(&q) <= 3);
    }

    #[test]
    fn bisecting_one_gap_stays_ordered() {
        // Always insert right after the first entry: the gap keeps halving towards "a0".
        let mut q = filled(2, 1_000);
        for i in 100..300 {
            q.insert(uid(i), Some(1), 0).unwrap();
        }
        assert_sorted(&q);
        assert_eq!(q.len(), 202);
        // One extra char per ~5-6 inserts into the same gap (log2(62) ≈ 5.95 halvings per digit,
        // fewer when rounding towards 'z'); measured 36 (left) / 42 (right). Bound: 1 per 4.
        assert!(max_key_len(&q) <= 2 + 200 / 4, "{}", max_key_len(&q));
        // Same thing from the other side (always insert just before the last entry).
        let mut q = filled(2, 1_000);
        for i in 100..300 {
            let at = q.len() - 1;
            q.insert(uid(i), Some(at), 0).unwrap();
        }
        assert_sorted(&q);
        assert!(max_key_len(&q) <= 2 + 200 / 4, "{}", max_key_len(&q));
    }

    // ---- Property tests ----

    #[derive(Clone, Debug)]
    enum Op {
        Insert { id: u8, index: Option<usize> },
        Remove { id: u8 },
        Move { id: u8, to: usize },
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        // Small id space so duplicates / missing ids happen; indices overshoot the queue.
        prop_oneof![
            3 => (0u8..24, proptest::option::of(0usize..16))
                .prop_map(|(id, index)| Op::Insert { id, index }),
            1 => (0u8..24).prop_map(|id| Op::Remove { id }),
            2 => (0u8..24, 0usize..16).prop_map(|(id, to)| Op::Move { id, to }),
        ]
    }

    /// Reference semantics on a plain `Vec<Uuid>`; `Err(())` means "must fail".
    fn model_apply(model: &mut Vec<Uuid>, cap: usize, op: &Op) -> Result<(), ()> {
        match *op {
            Op::Insert { id, index } => {
                let id = uid(id.into());
                let index = index.unwrap_or(model.len());
                if model.len() >= cap || index > model.len() || model.contains(&id) {
                    return Err(());
                }
                model.insert(index, id);
            }
            Op::Remove { id } => {
                let at = model.iter().position(|&x| x == uid(id.into())).ok_or(())?;
                model.remove(at);
            }
            Op::Move { id, to } => {
                let at = model.iter().position(|&x| x == uid(id.into())).ok_or(())?;
                if to >= model.len() {
                    return Err(());
                }
                let x = model.remove(at);
                model.insert(to, x);
            }
        }
        Ok(())
    }

    fn queue_apply(q: &mut Queue<u32>, op: &Op, item: u32) -> Result<Applied<u32>, QueueError> {
        match *op {
            Op::Insert { id, index } => q.insert(uid(id.into()), index, item),
            Op::Remove { id } => q.remove(uid(id.into())),
            Op::Move { id, to } => q.move_to(uid(id.into()), to),
        }
    }

    /// Deterministic Fisher-Yates driven by a seed (xorshift64*).
    fn shuffle<X>(v: &mut [X], mut seed: u64) {
        seed |= 1;
        for i in (1..v.len()).rev() {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            let r = seed.wrapping_mul(0x2545_F491_4F6C_DD1D);
            v.swap(i, (r % (i as u64 + 1)) as usize);
        }
    }

    /// A valid key: integer part for any head letter plus an optional fraction.
    fn key_strategy() -> impl Strategy<Value = Position> {
        let letter = prop_oneof![b'a'..=b'z', b'A'..=b'Z'];
        (
            letter,
            proptest::collection::vec(0usize..62, 26),
            proptest::collection::vec(0usize..62, 0..6),
            1usize..62,
        )
            .prop_map(|(head, int_digits, frac, last)| {
                let n = integer_len(head).unwrap() - 1;
                let mut k = vec![head];
                k.extend(int_digits[..n].iter().map(|&d| DIGITS[d]));
                if !frac.is_empty() || k == SMALLEST_INTEGER {
                    k.extend(frac.iter().map(|&d| DIGITS[d]));
                    k.push(DIGITS[last]);
                }
                Position::parse(std::str::from_utf8(&k).unwrap()).unwrap()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn ops_match_model_and_undo_restores(
            cap in 0usize..14,
            initial in 0u8..10,
            ops in proptest::collection::vec(op_strategy(), 0..60),
            seed in any::<u64>(),
        ) {
            let mut q: Queue<u32> = Queue::new(cap);
            let mut model = Vec::new();
            for i in 0..initial {
                let op = Op::Insert { id: 100 + i, index: Some(usize::from(i) / 2) };
                let expect = model_apply(&mut model, cap, &op);
                prop_assert_eq!(queue_apply(&mut q, &op, 0).is_ok(), expect.is_ok());
            }
            let start = q.clone();
            let mut history = Vec::new();
            for (n, op) in ops.iter().enumerate() {
                let before = q.clone();
                let expect = model_apply(&mut model, cap, op);
                let got = queue_apply(&mut q, op, n as u32);
                prop_assert_eq!(got.is_ok(), expect.is_ok(), "op {:?} -> {:?}", op, got);
                match got {
                    Ok(applied) => history.push((before, applied)),
                    Err(_) => prop_assert_eq!(&q, &before),
                }
                prop_assert_eq!(ids(&q), model.clone());
                for w in q.entries().windows(2) {
                    prop_assert!(w[0].position < w[1].position);
                }
                prop_assert!(q.len() <= cap);
            }
            // Reloading from storage in any order reproduces the queue.
            let mut rows = q.entries().to_vec();
            shuffle(&mut rows, seed);
            prop_assert_eq!(&Queue::from_entries(rows, cap).unwrap(), &q);
            // LIFO undo restores every intermediate state exactly.
            while let Some((before, applied)) = history.pop() {
                q.undo(applied);
                prop_assert_eq!(&q, &before);
            }
            prop_assert_eq!(q, start);
        }

        #[test]
        fn between_is_strictly_between(a in key_strategy(), b in key_strategy()) {
            for (lo, hi) in [(Some(&a), None), (None, Some(&a)), (Some(&b), None), (None, Some(&b))] {
                let m = Position::between(lo, hi);
                prop_assert!(lo.is_none_or(|lo| lo < &m) && hi.is_none_or(|hi| &m < hi));
                prop_assert_eq!(Position::parse(m.as_str()), Ok(m.clone()));
            }
            if a != b {
                let (lo, hi) = if a < b { (&a, &b) } else { (&b, &a) };
                let m = Position::between(Some(lo), Some(hi));
                prop_assert!(lo < &m && &m < hi, "{} < {} < {}", lo, m, hi);
                prop_assert_eq!(Position::parse(m.as_str()), Ok(m.clone()));
            }
        }

        #[test]
        fn repeated_bisection_of_a_random_gap(
            ops in proptest::collection::vec(op_strategy(), 0..40),
            gap in any::<prop::sample::Index>(),
            toward_left in any::<bool>(),
        ) {
            let mut q: Queue<u32> = Queue::new(1_000);
            for op in &ops {
                let _ = queue_apply(&mut q, op, 0);
            }
            let mut at = gap.index(q.len() + 1);
            for i in 0..200u128 {
                q.insert(uid(1_000 + i), Some(at), 0).unwrap();
                if !toward_left {
                    at += 1;
                }
            }
            for w in q.entries().windows(2) {
                prop_assert!(w[0].position < w[1].position);
            }
        }
    }
}
