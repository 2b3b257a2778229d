//! A session's listener connections: their outboxes, presence, and
//! broadcast. Pushing into an outbox never waits; a listener too far behind
//! is cut off (4008) and leaves presence, so no listener can slow the
//! session. Presence changes are coalesced per round of commands: a burst of
//! joins costs one frame per user, not one per pair of listeners.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use audotics_protocol::{CloseCode, ServerMsg, UserId};
use axum::extract::ws::Utf8Bytes;

use crate::hub::outbox::Outbox;
use crate::metrics::Metrics;

pub type ListenerId = u64;

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
    /// Users whose presence changed this round → (name, their new listeners).
    dirty: HashMap<UserId, (String, Vec<ListenerId>)>,
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
            self.mark(user, name, Some(id));
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
            self.mark(l.user_id, l.name, None);
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

    fn mark(&mut self, user: UserId, name: String, joined: Option<ListenerId>) {
        self.dirty
            .entry(user)
            .or_insert_with(|| (name, Vec::new()))
            .1
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
            let dirty = std::mem::take(&mut self.dirty);
            for (user_id, (name, joined)) in dirty {
                let online = self.counts.contains_key(&user_id);
                let msg = frame(&ServerMsg::Presence {
                    user_id: user_id.into_string(),
                    name,
                    online,
                    listeners: self.map.len() - self.watchers,
                });
                self.broadcast_except(msg, &joined);
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
            .map(|(user, (name, joined))| {
                let n = self.counts.get(&user).copied().unwrap_or(0);
                (user, name, n, joined)
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

    /// Close every listener of `user` with `code`.
    pub fn close_user(&mut self, user: &UserId, code: CloseCode, reason: &'static str) {
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
