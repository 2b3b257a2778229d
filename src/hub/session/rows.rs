//! The rows a batch writes, as net effects: each applied op's rows are
//! merged with what the batch already holds, so an entry added and removed
//! in one batch writes no queue row, a moved new entry is inserted at its
//! final position, and a track is linked or unlinked, never both. Pure.

use audotics_protocol::Req;

use super::state::{Effect, Event, Item, SessionState};
use crate::db::commit::{
    BatchWrite, EntryMarks, LoggedChange, LoggedInteraction, Moved, NewEntry, PlayedWrite,
};
use crate::hub::queue::Applied;

/// Add one applied op's rows to `write`; `state` is the state after it.
pub fn add(write: &mut BatchWrite, effect: &Effect, req: Option<&Req>, state: &SessionState) {
    match &effect.event {
        Event::Change(record) => {
            for applied in effect.queue() {
                queue(write, applied, state);
            }
            write.changes.push(LoggedChange {
                record: record.clone(),
                req: req.map(Req::to_string),
            });
        }
        Event::Reaction(r) => write.interactions.push(LoggedInteraction {
            user_id: r.user.to_string(),
            track_id: r.track.to_string(),
            kind: r.kind.clone(),
            req: Some(req.map_or_else(String::new, Req::to_string)),
            version: effect.version,
        }),
    }
    if let Some(t) = &effect.upsert {
        write.track_upserts.push(t.clone());
    }
    side(write, effect, state);
}

/// The party's rows: the interactions playback makes, played entries,
/// entries' votes and pins, removed members, and the party's state.
fn side(write: &mut BatchWrite, effect: &Effect, state: &SessionState) {
    let s = &effect.side;
    for r in &s.reactions {
        write.interactions.push(LoggedInteraction {
            user_id: r.user.to_string(),
            track_id: r.track.to_string(),
            kind: r.kind.clone(),
            req: None,
            version: effect.version,
        });
    }
    if let Some(p) = &s.played {
        write.played.push(PlayedWrite {
            version: effect.version,
            entry_id: p.entry.to_string(),
            track_id: p.item.track.id.clone(),
            added_by: p.item.added_by.to_string(),
            added_at: p.item.added_at,
            started_at: p.started_at,
            ended_at: p.ended_at,
            skipped: p.skipped,
        });
    }
    for id in &s.items {
        let Some((_, e)) = state.queue().get(*id) else {
            continue;
        };
        let votes: Vec<String> = e.item.votes.iter().map(ToString::to_string).collect();
        let entry_id = id.to_string();
        if let Some(i) = write.inserts.iter_mut().find(|i| i.entry_id == entry_id) {
            i.votes = votes;
            i.pinned_at = e.item.pinned_at;
        } else {
            write.marks.retain(|m| m.entry_id != entry_id);
            write.marks.push(EntryMarks {
                entry_id,
                votes,
                pinned_at: e.item.pinned_at,
            });
        }
    }
    if let Some((user, _)) = &s.kicked {
        write.member_removes.push(user.to_string());
    }
    if s.party {
        let stored = state.party.to_stored(&state.session.host_id);
        write.party = Some(serde_json::to_value(stored).expect("party serializes"));
    }
}

/// The queue tables' rows (`hub_queue_entry`, `_PlaylistToTrack`).
fn queue(write: &mut BatchWrite, applied: &Applied<Item>, state: &SessionState) {
    match applied {
        Applied::Inserted { entry, .. } => {
            write.inserts.push(NewEntry {
                entry_id: entry.id.to_string(),
                track_id: entry.item.track.id.clone(),
                added_by: entry.item.added_by.to_string(),
                added_at: entry.item.added_at,
                position: entry.position.as_str().to_owned(),
                votes: entry.item.votes.iter().map(ToString::to_string).collect(),
                round: entry.item.round,
                pinned_at: entry.item.pinned_at,
            });
            let track = &entry.item.track.id;
            write.unlink_tracks.retain(|t| t != track);
            write.link_tracks.push(track.clone());
        }
        Applied::Removed { entry, .. } => {
            let id = entry.id.to_string();
            // Added in this batch: it never reaches the table.
            match write.inserts.iter().position(|i| i.entry_id == id) {
                Some(i) => {
                    write.inserts.remove(i);
                }
                None => {
                    write.moves.retain(|m| m.entry_id != id);
                    write.marks.retain(|m| m.entry_id != id);
                    write.deletes.push(id);
                }
            }
            let track = &entry.item.track.id;
            if !state.holds_track(track) {
                write.link_tracks.retain(|t| t != track);
                write.unlink_tracks.push(track.clone());
            }
        }
        Applied::Moved {
            id, new_position, ..
        } => {
            let (id, position) = (id.to_string(), new_position.as_str().to_owned());
            if let Some(i) = write.inserts.iter_mut().find(|i| i.entry_id == id) {
                i.position = position;
            } else if let Some(m) = write.moves.iter_mut().find(|m| m.entry_id == id) {
                m.position = position;
            } else {
                write.moves.push(Moved {
                    entry_id: id,
                    position,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::session::state::tests::{
        add_op, apply_to, entry_of, reorder_op, state, Fixture,
    };
    use crate::hub::session::state::Op;

    fn req(s: &str) -> Req {
        Req::parse(s).unwrap()
    }

    /// Apply `ops` as one batch; the rows it writes.
    fn batch(f: &mut Fixture, ops: Vec<(&str, Op)>) -> BatchWrite {
        let mut write = BatchWrite::default();
        for (i, (who, op)) in ops.into_iter().enumerate() {
            let e = apply_to(f, who, op).expect("applies");
            add(&mut write, &e, Some(&req(&format!("r{i}"))), &f.state);
        }
        write
    }

    #[test]
    fn an_entry_added_and_removed_in_one_batch_writes_no_queue_row() {
        let mut f = Fixture::new(state(10));
        let mut write = BatchWrite::default();
        let e = apply_to(&mut f, "ann", add_op("t1")).unwrap();
        add(&mut write, &e, Some(&req("a")), &f.state);
        let entry = entry_of(&e);
        let e = apply_to(&mut f, "ann", Op::Remove { entry }).unwrap();
        add(&mut write, &e, Some(&req("b")), &f.state);
        assert!(
            write.inserts.is_empty() && write.deletes.is_empty(),
            "{write:?}"
        );
        assert_eq!(write.changes.len(), 2, "both changes are logged");
        assert!(write.link_tracks.is_empty(), "{write:?}");
        assert_eq!(write.unlink_tracks, vec!["t1".to_owned()]);
    }

    #[test]
    fn a_new_entry_moved_in_its_batch_is_inserted_at_its_final_position() {
        let mut f = Fixture::new(state(10));
        let mut write = BatchWrite::default();
        let a = apply_to(&mut f, "host", add_op("t1")).unwrap();
        add(&mut write, &a, Some(&req("a")), &f.state);
        let b = apply_to(&mut f, "host", add_op("t2")).unwrap();
        add(&mut write, &b, Some(&req("b")), &f.state);
        let entry = entry_of(&b);
        let m = apply_to(&mut f, "host", reorder_op(entry, 0)).unwrap();
        add(&mut write, &m, Some(&req("c")), &f.state);
        assert!(write.moves.is_empty(), "{write:?}");
        let first = &f.state.queue().entries()[0];
        let row = write
            .inserts
            .iter()
            .find(|i| i.entry_id == entry.to_string())
            .unwrap();
        assert_eq!(row.position, first.position.as_str());
        assert_eq!(write.link_tracks, vec!["t1".to_owned(), "t2".to_owned()]);
    }

    #[test]
    fn a_track_still_queued_twice_is_not_unlinked() {
        let mut f = Fixture::new(state(10));
        let a = apply_to(&mut f, "ann", add_op("t1")).unwrap();
        apply_to(&mut f, "ann", add_op("t1")).unwrap();
        let entry = entry_of(&a);
        let w = batch(&mut f, vec![("ann", Op::Remove { entry })]);
        assert!(w.unlink_tracks.is_empty(), "{w:?}");
        assert_eq!(w.deletes.len(), 1);
    }
}
