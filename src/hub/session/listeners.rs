//! A session's listener connections: their outboxes, presence, and
//! broadcast. Pushing into an outbox never waits; a listener too far behind
//! is cut off (4008) and leaves presence, so no listener can slow the
//! session. Presence changes are coalesced per round of commands: a burst of
//! joins costs one frame per user, not one per pair of listeners. In a crowd
//! (more than [`CROWD`] listeners) a change that only moved the count gets no
//! frame of its own: one frame tells every listener the new total, so a
//! session of n filling up costs about n frames a second, not n per join.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use audotics_protocol::{CloseCode, ServerMsg, UserId};
use axum::extract::ws::Utf8Bytes;

use crate::hub::outbox::Outbox;
use crate::metrics::Metrics;

pub type ListenerId = u64;

/// More listeners than this make a session a crowd: presence goes out at
/// most once a second ([`CROWD_WINDOW`]), and count-only changes share one
/// frame. Below it, every round tells each user's change at once.
pub const CROWD: usize = 1000;

/// How often a crowd hears presence.
pub const CROWD_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

/// A user whose presence changed since the last flush.
#[derive(Debug)]
pub struct Dirty<J> {
    pub name: String,
    /// The user's listeners that joined since (not told of their own join).
    pub joined: Vec<J>,
    /// Whether the user was online when last told.
    pub was_online: bool,
}

/// One user's change, for [`presence_frames`].
pub struct Change<J> {
    pub user: UserId,
    pub dirty: Dirty<J>,
    pub online: bool,
}

/// The presence frames of one flush, each with the listeners not to send it
/// to. Outside a crowd, one frame per changed user (not to that user's
/// joiners). In a crowd, only users whose `online` flipped get their own
/// frame; the rest share one frame, to everyone, carrying the new total.
pub fn presence_frames<J>(
    changes: Vec<Change<J>>,
    listeners: usize,
    crowd: bool,
) -> Vec<(Utf8Bytes, Vec<J>)> {
    let msg = |user: UserId, name: String, online: bool| {
        frame(&ServerMsg::Presence {
            user_id: user.into_string(),
            name,
            online,
            listeners,
        })
    };
    let mut frames = Vec::new();
    let mut count_only = None;
    for c in changes {
        if crowd && c.online == c.dirty.was_online {
            count_only = Some((c.user, c.dirty.name, c.online));
            continue;
        }
        frames.push((msg(c.user, c.dirty.name, c.online), c.dirty.joined));
    }
    if let Some((user, name, online)) = count_only {
        frames.push((msg(user, name, online), Vec::new()));
    }
    frames
}

struct Listener {
    user_id: UserId,
    name: String,
    outbox: Outbox,
    /// It asked for `suggestions` frames at join.
    suggestions: bool,
    /// A screen that watches: not in presence.
    watch: bool,
}

/// What a joiner asked for besides the session's frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Asks {
    /// `suggestions` frames.
    pub suggestions: bool,
    /// To watch (a screen), not to take part.
    pub watch: bool,
}

/// Every listener of one session (on this node).
pub struct Listeners {
    map: HashMap<ListenerId, Listener>,
    /// Listeners per user (presence without a scan).
    counts: HashMap<UserId, usize>,
    /// Listeners that watch (screens): in `map`, not in `counts`.
    watchers: usize,
    next: ListenerId,
    /// Users whose presence changed since the last flush.
    dirty: HashMap<UserId, Dirty<ListenerId>>,
    metrics: Arc<Metrics>,
}

/// Serialize a server message once into frame bytes every listener shares.
pub fn frame(msg: &ServerMsg) -> Utf8Bytes {
    Utf8Bytes::from(msg.to_json())
}

impl Listeners {
    pub fn new(metrics: Arc<Metrics>) -> Listeners {
        Listeners {
            map: HashMap::new(),
            counts: HashMap::new(),
            watchers: 0,
            next: 1,
            dirty: HashMap::new(),
            metrics,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Listener connections in presence (screens are not).
    fn in_presence(&self) -> usize {
        self.map.len() - self.watchers
    }

    /// Whether the session is a crowd here ([`CROWD`]).
    pub fn crowd(&self) -> bool {
        self.in_presence() > CROWD
    }

    /// Users with at least one listener.
    pub fn online(&self) -> HashSet<UserId> {
        self.counts.keys().cloned().collect()
    }

    /// Each user with listeners here: (name, how many).
    pub fn by_user(&self) -> HashMap<UserId, (String, usize)> {
        let mut users = HashMap::with_capacity(self.counts.len());
        for l in self.map.values().filter(|l| !l.watch) {
            users
                .entry(l.user_id.clone())
                .or_insert_with(|| (l.name.clone(), 0))
                .1 += 1;
        }
        users
    }

    /// Register a listener; others hear of it at the next flush.
    pub fn add(&mut self, user_id: UserId, name: String, outbox: Outbox, asks: Asks) -> ListenerId {
        let id = self.next;
        self.next += 1;
        self.metrics.listeners.inc();
        if asks.watch {
            self.watchers += 1;
        } else {
            *self.counts.entry(user_id.clone()).or_default() += 1;
        }
        self.map.insert(
            id,
            Listener {
                user_id,
                name,
                outbox,
                suggestions: asks.suggestions,
                watch: asks.watch,
            },
        );
        id
    }

    /// Announce `id`'s arrival to the others at the next flush (the joiner
    /// itself learned its state from its snapshot).
    pub fn announce(&mut self, id: ListenerId) {
        if let Some(l) = self.map.get(&id).filter(|l| !l.watch) {
            let (user, name) = (l.user_id.clone(), l.name.clone());
            // Counted already: online before if others of the user were.
            let was_online = self.counts.get(&user).copied().unwrap_or(0) > 1;
            self.mark(user, name, Some(id), was_online);
        }
    }

    /// Forget a listener (it left, or its connection is gone).
    pub fn remove(&mut self, id: ListenerId) {
        if let Some(l) = self.map.remove(&id) {
            self.metrics.listeners.dec();
            if l.watch {
                self.watchers -= 1;
                return;
            }
            self.uncount(&l.user_id);
            self.mark(l.user_id, l.name, None, true);
        }
    }

    fn uncount(&mut self, user: &UserId) {
        if let Some(n) = self.counts.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                self.counts.remove(user);
            }
        }
    }

    fn mark(&mut self, user: UserId, name: String, joined: Option<ListenerId>, was_online: bool) {
        self.dirty
            .entry(user)
            .or_insert_with(|| Dirty {
                name,
                joined: Vec::new(),
                was_online,
            })
            .joined
            .extend(joined);
    }

    /// Send one frame to a listener; cut it off if it is too far behind.
    pub fn send_to(&mut self, id: ListenerId, frame: Utf8Bytes) {
        let slow = match self.map.get(&id) {
            Some(l) => l.outbox.push(frame).is_err(),
            None => false,
        };
        if slow {
            self.cut_off(id);
        }
    }

    /// Send one shared frame to every listener.
    pub fn broadcast(&mut self, frame: Utf8Bytes) {
        self.broadcast_except(frame, &[]);
    }

    /// Send one shared frame to every listener but `except`.
    pub fn broadcast_except(&mut self, frame: Utf8Bytes, except: &[ListenerId]) {
        self.send_where(frame, |id, _| !except.contains(&id));
    }

    /// A `suggestions` frame, to the listeners that asked for them.
    pub fn broadcast_suggestions(&mut self, frame: Utf8Bytes) {
        self.send_where(frame, |_, l| l.suggestions);
    }

    fn send_where(&mut self, frame: Utf8Bytes, to: impl Fn(ListenerId, &Listener) -> bool) {
        let mut slow = Vec::new();
        for (id, l) in &self.map {
            if !to(*id, l) {
                continue;
            }
            if l.outbox.push(frame.clone()).is_err() {
                slow.push(*id);
            } else {
                self.metrics.frames_sent.inc();
            }
        }
        for id in slow {
            self.cut_off(id);
        }
    }

    fn cut_off(&mut self, id: ListenerId) {
        self.metrics.slow_listener_disconnects.inc();
        tracing::debug!(listener = id, "listener too slow: closing with 4008");
        self.remove(id);
    }

    /// Whether presence changed since the last flush.
    pub fn presence_pending(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Send the coalesced presence frames. Cutting off a slow listener
    /// changes presence again, so repeat until nothing is left (each round
    /// removes listeners, so this ends).
    pub fn flush_presence(&mut self) {
        while !self.dirty.is_empty() {
            let changes: Vec<Change<ListenerId>> = std::mem::take(&mut self.dirty)
                .into_iter()
                .map(|(user, dirty)| Change {
                    online: self.counts.contains_key(&user),
                    user,
                    dirty,
                })
                .collect();
            for (msg, except) in presence_frames(changes, self.in_presence(), self.crowd()) {
                self.broadcast_except(msg, &except);
            }
        }
    }

    /// The presence changes since the last call, for the session's owner
    /// on another node: (user, name, their listeners here now, the
    /// listeners that joined).
    pub fn take_changes(&mut self) -> Vec<(UserId, String, usize, Vec<ListenerId>)> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .map(|(user, d)| {
                let n = self.counts.get(&user).copied().unwrap_or(0);
                (user, d.name, n, d.joined)
            })
            .collect()
    }

    /// Close every listener with `code`, after `last` if given (queued
    /// behind what each already has).
    pub fn close_all(&mut self, last: Option<Utf8Bytes>, code: CloseCode, reason: &'static str) {
        for (_, l) in self.map.drain() {
            self.metrics.listeners.dec();
            if let Some(f) = &last {
                let _ = l.outbox.push(f.clone());
            }
            l.outbox.close(code, reason);
        }
        self.counts.clear();
        self.watchers = 0;
        self.dirty.clear();
    }

    /// Close one listener with `code`.
    pub fn close(&mut self, id: ListenerId, code: CloseCode, reason: &'static str) {
        if let Some(l) = self.map.get(&id) {
            l.outbox.close(code, reason);
        }
        self.remove(id);
    }

    /// Close every listener of `user` with `code`: 4003 (no longer a
    /// member), 4011 (removed by a host) or 4012 (banned).
    pub fn kick(&mut self, user: &UserId, code: CloseCode) {
        let reason = match code {
            CloseCode::Banned => "banned from the session",
            CloseCode::Removed => "removed from the session",
            _ => "no longer a member",
        };
        let ids: Vec<ListenerId> = self
            .map
            .iter()
            .filter(|(_, l)| l.user_id == *user)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(l) = self.map.get(&id) {
                l.outbox.close(code, reason);
            }
            self.remove(id);
        }
    }

    /// Forget every listener without a word (their connections notice the
    /// outbox closing when its last sender goes).
    pub fn drop_all(&mut self) {
        for _ in self.map.drain() {
            self.metrics.listeners.dec();
        }
        self.counts.clear();
        self.dirty.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::outbox::{outbox, Outbound, OutboxReceiver};

    fn listeners() -> Listeners {
        Listeners::new(Arc::new(Metrics::default()))
    }

    fn drain(rx: &mut OutboxReceiver) -> Vec<String> {
        let mut out = Vec::new();
        let mut items = Vec::new();
        rx.drain_into(&mut items, usize::MAX);
        for i in items {
            if let Outbound::Frame(f) = i {
                out.push(f.as_str().to_owned());
            }
        }
        out
    }

    fn user(s: &str) -> UserId {
        UserId::from_stored(s.into())
    }

    #[test]
    fn presence_is_coalesced_per_user_and_skips_the_joiner() {
        let mut ls = listeners();
        let (a, mut ra) = outbox(16, 1 << 20);
        let (b1, mut rb1) = outbox(16, 1 << 20);
        let (b2, mut rb2) = outbox(16, 1 << 20);
        let ann = ls.add(user("ann"), "Ann".into(), a, Asks::default());
        ls.announce(ann);
        ls.flush_presence();
        let x = ls.add(user("ben"), "Ben".into(), b1, Asks::default());
        ls.announce(x);
        let y = ls.add(user("ben"), "Ben".into(), b2, Asks::default());
        ls.announce(y);
        ls.flush_presence();
        let seen = drain(&mut ra);
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(
            seen[0].contains(r#""online":true,"listeners":3"#),
            "{seen:?}"
        );
        assert!(drain(&mut rb1).is_empty());
        assert!(drain(&mut rb2).is_empty());
    }

    /// In a crowd, joins that only move the count share one frame, to
    /// everyone; a user coming online still gets its own.
    #[test]
    fn a_crowd_hears_count_only_changes_in_one_frame() {
        let mut ls = listeners();
        let mut rxs = Vec::new();
        for i in 0..=CROWD {
            let (o, r) = outbox(64, 1 << 20);
            ls.add(
                user(&format!("u{}", i % 10)),
                format!("U{}", i % 10),
                o,
                Asks::default(),
            );
            rxs.push(r);
        }
        ls.flush_presence();
        assert!(ls.crowd());
        for r in &mut rxs {
            drain(r);
        }
        // Nine more listeners of users already online, and one newcomer.
        for i in 0..9 {
            let (o, r) = outbox(64, 1 << 20);
            let id = ls.add(user(&format!("u{i}")), format!("U{i}"), o, Asks::default());
            ls.announce(id);
            rxs.push(r);
        }
        let (o, r) = outbox(64, 1 << 20);
        let new = ls.add(user("new"), "New".into(), o, Asks::default());
        ls.announce(new);
        rxs.push(r);
        ls.flush_presence();
        let total = format!(r#""listeners":{}"#, CROWD + 11);
        let first = drain(&mut rxs[0]);
        assert_eq!(
            first.len(),
            2,
            "one for the newcomer, one for the count: {first:?}"
        );
        assert!(
            first.iter().any(|f| f.contains(r#""userId":"new""#)),
            "{first:?}"
        );
        assert!(first.iter().all(|f| f.contains(&total)), "{first:?}");
        // The newcomer is not told of its own join, only the count.
        let own = drain(rxs.last_mut().unwrap());
        assert_eq!(own.len(), 1, "{own:?}");
        assert!(!own[0].contains(r#""userId":"new""#), "{own:?}");
    }

    /// Below the crowd size, each user's change is its own frame.
    #[test]
    fn outside_a_crowd_every_changed_user_is_told() {
        let mut ls = listeners();
        let (a, mut ra) = outbox(64, 1 << 20);
        ls.add(user("ann"), "Ann".into(), a, Asks::default());
        let mut keep = Vec::new();
        for name in ["ben", "cat", "dan"] {
            for _ in 0..2 {
                let (o, r) = outbox(64, 1 << 20);
                ls.add(user(name), name.into(), o, Asks::default());
                keep.push(r);
            }
        }
        ls.flush_presence();
        drain(&mut ra);
        for name in ["ben", "cat", "dan"] {
            let (o, r) = outbox(64, 1 << 20);
            let id = ls.add(user(name), name.into(), o, Asks::default());
            ls.announce(id);
            keep.push(r);
        }
        ls.flush_presence();
        assert!(!ls.crowd());
        assert_eq!(drain(&mut ra).len(), 3);
    }

    /// A joiner's snapshot larger than its outbox's byte limit, still
    /// unsent, does not get it cut off by the next broadcast.
    #[test]
    fn an_unsent_large_snapshot_does_not_count_against_the_outbox() {
        let mut ls = listeners();
        let (joiner, _rj) = outbox(16, 1024);
        let id = ls.add(user("joy"), "Joy".into(), joiner.clone(), Asks::default());
        joiner.push_opening("s".repeat(4096).into()).unwrap();
        ls.announce(id);
        let (other, _ro) = outbox(16, 1024);
        let o = ls.add(user("ola"), "Ola".into(), other, Asks::default());
        ls.announce(o);
        ls.flush_presence();
        ls.broadcast(frame(&ServerMsg::Resumed { version: 1 }));
        assert_eq!(ls.len(), 2, "the joiner was cut off");
    }

    #[test]
    fn a_listener_too_far_behind_is_cut_off_and_goes_offline() {
        let mut ls = listeners();
        let (a, mut ra) = outbox(16, 1 << 20);
        let (slow, _rs) = outbox(1, 1 << 20);
        ls.add(user("ann"), "Ann".into(), a, Asks::default());
        ls.add(user("sam"), "Sam".into(), slow, Asks::default());
        ls.broadcast(frame(&ServerMsg::Resumed { version: 1 }));
        ls.broadcast(frame(&ServerMsg::Resumed { version: 2 }));
        ls.flush_presence();
        assert_eq!(ls.len(), 1);
        let seen = drain(&mut ra);
        assert!(
            seen.last()
                .unwrap()
                .contains(r#""userId":"sam","name":"Sam","online":false,"listeners":1"#),
            "{seen:?}"
        );
    }

    #[test]
    fn suggestions_go_only_to_listeners_that_asked() {
        let mut ls = listeners();
        let (a, mut ra) = outbox(16, 1 << 20);
        let (b, mut rb) = outbox(16, 1 << 20);
        ls.add(
            user("ann"),
            "Ann".into(),
            a,
            Asks {
                suggestions: true,
                watch: false,
            },
        );
        ls.add(user("ben"), "Ben".into(), b, Asks::default());
        ls.broadcast_suggestions(r#"{"type":"suggestions"}"#.into());
        ls.broadcast(frame(&ServerMsg::Resumed { version: 1 }));
        assert_eq!(drain(&mut ra).len(), 2);
        let seen = drain(&mut rb);
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(!seen[0].contains("suggestions"), "{seen:?}");
    }

    #[test]
    fn a_screen_that_watches_gets_frames_but_is_not_in_presence() {
        let mut ls = listeners();
        let (a, mut ra) = outbox(16, 1 << 20);
        let (tv, mut rtv) = outbox(16, 1 << 20);
        let ann = ls.add(user("ann"), "Ann".into(), a, Asks::default());
        ls.announce(ann);
        ls.flush_presence();
        drain(&mut ra);
        let watch = Asks {
            suggestions: false,
            watch: true,
        };
        let t = ls.add(user("tv"), "TV".into(), tv, watch);
        ls.announce(t);
        ls.flush_presence();
        assert!(drain(&mut ra).is_empty(), "no presence for a screen");
        assert_eq!(ls.online(), HashSet::from([user("ann")]));
        assert!(!ls.by_user().contains_key(&user("tv")));
        ls.broadcast(frame(&ServerMsg::Resumed { version: 1 }));
        assert_eq!(drain(&mut rtv).len(), 1, "the screen gets updates");
        // Ann's next presence counts her listener, not the screen.
        assert_eq!(drain(&mut ra).len(), 1);
        ls.remove(t);
        ls.flush_presence();
        assert!(drain(&mut ra).is_empty(), "a screen leaving is not news");
        ls.remove(ann);
        ls.flush_presence();
        assert_eq!(ls.len(), 0);
        let (b, _rb) = outbox(16, 1 << 20);
        let ben = ls.add(user("ben"), "Ben".into(), b, Asks::default());
        let (c, mut rc) = outbox(16, 1 << 20);
        ls.add(user("tv"), "TV".into(), c, watch);
        ls.announce(ben);
        ls.flush_presence();
        let seen = drain(&mut rc);
        assert!(
            seen[0].contains(r#""online":true,"listeners":1"#),
            "{seen:?}"
        );
    }
}
