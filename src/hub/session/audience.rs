//! Who hears a session actor: its own listeners (a single hub), or, in a
//! cluster, every node's relays through the events it publishes and the
//! requesters its answers go back to. The actor says the same things to
//! either (`send_to`, `update`, `reaction`, presence, `close_*`); only
//! this module knows where they go.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use audotics_protocol::{CloseCode, SessionId, UserId};
use axum::extract::ws::Utf8Bytes;
use tokio::sync::oneshot;

use super::listeners::{
    presence_frames, Change, Dirty, ListenerId, Listeners, CROWD, CROWD_WINDOW,
};
use crate::cluster::wire::{Event, Mark, OpReply, Report, Stamped};
use crate::cluster::Cluster;
use crate::hub::registry::Registry;
use crate::hub::relay::RelayHandle;

/// After its last event, an owner ticks this long (so a relay that missed
/// the last update learns of it).
const TICK_AFTER: Duration = Duration::from_secs(5);

pub enum Audience {
    /// A single hub: the listeners are the actor's own.
    Local(Listeners),
    /// A cluster: listeners live in relays on every node.
    Cluster(Box<Owned>),
}

/// A session served by this node for the whole cluster.
pub struct Owned {
    cluster: Cluster,
    relays: Arc<Registry<RelayHandle>>,
    session: SessionId,
    subject: async_nats::Subject,
    mark: Mark,
    /// Ops waiting for their answer, each under a temporary listener id
    /// (the actor's commit path answers listeners).
    responders: HashMap<ListenerId, oneshot::Sender<OpReply>>,
    next: ListenerId,
    presence: Presence,
    /// Users whose presence changed since the last flush (their joiners
    /// not to tell: node, listener).
    pub(super) dirty: HashMap<UserId, Dirty<(String, ListenerId)>>,
    last_event: Instant,
    ticked: u64,
}

/// Listeners of the session on every node, from the nodes' reports.
#[derive(Default)]
struct Presence {
    nodes: HashMap<String, HashMap<UserId, (String, usize)>>,
    /// The sum of every count (kept, not summed: asked every round).
    total: usize,
}

impl Presence {
    fn count(&self, user: &UserId) -> usize {
        self.nodes
            .values()
            .filter_map(|users| users.get(user).map(|(_, n)| *n))
            .sum()
    }

    fn total(&self) -> usize {
        self.total
    }

    /// Apply one node's report.
    fn apply(&mut self, report: &Report) {
        if report.full {
            self.forget(&report.node);
        }
        let node = self.nodes.entry(report.node.clone()).or_default();
        for (user, name, n) in &report.users {
            let user = UserId::from_stored(user.clone());
            let old = if *n == 0 {
                node.remove(&user)
            } else {
                node.insert(user, (name.clone(), *n))
            };
            self.total = self.total + n - old.map_or(0, |(_, m)| m);
        }
        if node.is_empty() {
            self.nodes.remove(&report.node);
        }
    }

    /// Drop a node's listeners: the users it had.
    fn forget(&mut self, node: &str) -> HashMap<UserId, (String, usize)> {
        let users = self.nodes.remove(node).unwrap_or_default();
        self.total -= users.values().map(|(_, n)| n).sum::<usize>();
        users
    }

    /// The users whose count `report` changes on its node.
    fn changed_by(&self, report: &Report) -> Vec<(UserId, String)> {
        let empty = HashMap::new();
        let node = self.nodes.get(&report.node).unwrap_or(&empty);
        if !report.full {
            return report
                .users
                .iter()
                .map(|(u, name, _)| (UserId::from_stored(u.clone()), name.clone()))
                .collect();
        }
        let mut changed = Vec::new();
        for (user, (name, n)) in node {
            let now = report.users.iter().find(|(u, _, _)| u == user.as_str());
            if now.is_none_or(|(_, _, m)| m != n) {
                changed.push((user.clone(), name.clone()));
            }
        }
        for (user, name, n) in &report.users {
            let user = UserId::from_stored(user.clone());
            if node.get(&user).is_none_or(|(_, m)| m != n)
                && !changed.iter().any(|(u, _)| *u == user)
            {
                changed.push((user, name.clone()));
            }
        }
        changed
    }

    fn name(&self, user: &UserId) -> Option<String> {
        self.nodes
            .values()
            .find_map(|users| users.get(user).map(|(name, _)| name.clone()))
    }
}

impl Owned {
    pub fn new(
        cluster: Cluster,
        relays: Arc<Registry<RelayHandle>>,
        session: SessionId,
        epoch: i64,
        version: i64,
    ) -> Owned {
        let subject = cluster.events_subject(session.as_str());
        Owned {
            cluster,
            relays,
            session,
            subject,
            mark: Mark {
                epoch,
                seq: 0,
                version,
            },
            responders: HashMap::new(),
            next: 1,
            presence: Presence::default(),
            dirty: HashMap::new(),
            last_event: Instant::now(),
            ticked: 0,
        }
    }

    pub fn mark(&self) -> Mark {
        self.mark
    }

    /// An op to answer through `reply`: the id its answer is sent to.
    pub fn responder(&mut self, reply: oneshot::Sender<OpReply>) -> ListenerId {
        let id = self.next;
        self.next += 1;
        self.responders.insert(id, reply);
        id
    }

    fn publish(&mut self, event: Event) {
        self.mark.seq += 1;
        self.last_event = Instant::now();
        let stamped = Stamped {
            mark: self.mark,
            event,
        };
        let metrics = self.cluster.metrics();
        metrics.events_published.inc();
        // This node's own relay hears it directly (NATS does not echo).
        if let Some(relay) = self.relays.get(&self.session) {
            relay.event(stamped.clone());
        }
        self.cluster.publish(self.subject.clone(), stamped.encode());
    }

    /// A node's report: presence frames for the users whose count changed.
    pub fn report(&mut self, report: Report) {
        let changed = self.presence.changed_by(&report);
        let was: Vec<bool> = changed
            .iter()
            .map(|(user, _)| self.presence.count(user) > 0)
            .collect();
        self.presence.apply(&report);
        let joined: Vec<(String, ListenerId)> = report
            .joined
            .iter()
            .map(|id| (report.node.clone(), *id))
            .collect();
        for ((user, name), was_online) in changed.into_iter().zip(was) {
            self.mark_dirty(user, name, was_online)
                .extend(joined.iter().cloned());
        }
    }

    /// Note a user's change; the joiners not to tell go into the result.
    fn mark_dirty(
        &mut self,
        user: UserId,
        name: String,
        was_online: bool,
    ) -> &mut Vec<(String, ListenerId)> {
        &mut self
            .dirty
            .entry(user)
            .or_insert_with(|| Dirty {
                name,
                joined: Vec::new(),
                was_online,
            })
            .joined
    }

    /// Forget the listeners of nodes no longer heard from.
    fn prune(&mut self) {
        let gone: Vec<String> = self
            .presence
            .nodes
            .keys()
            .filter(|n| !self.cluster.alive(n))
            .cloned()
            .collect();
        for node in gone {
            tracing::info!(%node, "a node went silent: its listeners leave presence");
            for (user, (name, _)) in self.presence.forget(&node) {
                self.mark_dirty(user, name, true);
            }
        }
    }

    fn flush_presence(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        if dirty.is_empty() {
            return;
        }
        let total = self.presence.total();
        let changes: Vec<Change<(String, ListenerId)>> = dirty
            .into_iter()
            .map(|(user, mut dirty)| {
                if let Some(name) = self.presence.name(&user) {
                    dirty.name = name;
                }
                Change {
                    online: self.presence.count(&user) > 0,
                    user,
                    dirty,
                }
            })
            .collect();
        for (frame, except) in presence_frames(changes, total, total > CROWD) {
            self.publish(Event::Presence { frame, except });
        }
    }

    /// Once a second: forget silent nodes, and tick while events are recent.
    pub fn tick(&mut self) {
        self.prune();
        self.flush_presence();
        if self.mark.seq != self.ticked && self.last_event.elapsed() < TICK_AFTER {
            let last = self.last_event;
            self.publish(Event::Tick);
            self.last_event = last;
        }
        if self.last_event.elapsed() >= TICK_AFTER {
            self.ticked = self.mark.seq;
        }
    }

    /// Announce this node as the owner (relays report their listeners).
    pub fn announce(&mut self) {
        let node = self.cluster.node().to_owned();
        self.publish(Event::Owner(node));
    }
}

/// When presence may go out next: at once, except in a crowd, which hears
/// it at most once per [`CROWD_WINDOW`].
#[derive(Default)]
pub struct PresenceWindow {
    told: Option<Instant>,
    /// A flush held back until then.
    pub due: Option<Instant>,
}

impl PresenceWindow {
    /// Whether presence may go out now; if not, `due` says when.
    pub fn open(&mut self, crowd: bool, now: Instant) -> bool {
        let next = self.told.map(|t| t + CROWD_WINDOW);
        if let Some(next) = next.filter(|next| crowd && now < *next) {
            self.due = Some(next);
            return false;
        }
        self.told = Some(now);
        self.due = None;
        true
    }
}

impl Audience {
    /// Answer one listener (or one forwarded op).
    pub fn send_to(&mut self, id: ListenerId, frame: Utf8Bytes) {
        match self {
            Audience::Local(l) => l.send_to(id, frame),
            Audience::Cluster(o) => {
                if let Some(reply) = o.responders.remove(&id) {
                    let _ = reply.send(OpReply {
                        mark: o.mark,
                        frame,
                    });
                }
            }
        }
    }

    /// A committed change, `version`'s `update` frame.
    pub fn update(&mut self, version: i64, frame: Utf8Bytes) {
        match self {
            Audience::Local(l) => l.broadcast(frame),
            Audience::Cluster(o) => {
                o.mark.version = version;
                o.publish(Event::Update(frame));
            }
        }
    }

    /// A committed reaction's `interaction` frame.
    pub fn reaction(&mut self, frame: Utf8Bytes) {
        match self {
            Audience::Local(l) => l.broadcast(frame),
            Audience::Cluster(o) => o.publish(Event::Reaction(frame)),
        }
    }

    /// New suggestions for the room.
    pub fn suggestions(&mut self, frame: Utf8Bytes) {
        match self {
            Audience::Local(l) => l.broadcast_suggestions(frame),
            Audience::Cluster(o) => o.publish(Event::Suggestions(frame)),
        }
    }

    /// Whether presence changed since the last flush.
    pub fn presence_pending(&self) -> bool {
        match self {
            Audience::Local(l) => l.presence_pending(),
            Audience::Cluster(o) => !o.dirty.is_empty(),
        }
    }

    pub fn flush_presence(&mut self) {
        match self {
            Audience::Local(l) => l.flush_presence(),
            Audience::Cluster(o) => o.flush_presence(),
        }
    }

    /// Whether the session is a crowd ([`CROWD`]): presence at most once
    /// per [`PresenceWindow`].
    pub fn crowd(&self) -> bool {
        match self {
            Audience::Local(l) => l.crowd(),
            Audience::Cluster(o) => o.presence.total() > CROWD,
        }
    }

    /// The session ended: `ended` to everyone, then close 4010.
    pub fn end(&mut self, ended: Utf8Bytes) {
        match self {
            Audience::Local(l) => l.close_all(Some(ended), CloseCode::Ended, "session ended"),
            Audience::Cluster(o) => o.publish(Event::Ended(ended)),
        }
    }

    /// Close every listener of `user` with `code`: 4003 (no longer a
    /// member, outside the hub), 4011 (removed by a host), 4012 (banned).
    pub fn kick(&mut self, user: &UserId, code: CloseCode) {
        match self {
            Audience::Local(l) => l.kick(user, code),
            Audience::Cluster(o) => o.publish(Event::Kick {
                user: user.to_string(),
                code: code.code(),
            }),
        }
    }

    /// The actor stops. A single hub's listeners left are closed with 1001
    /// (they resume with the next actor); a cluster's stay with their
    /// relays, whose next request finds the next owner.
    pub fn stop(&mut self, shutting_down: bool) {
        match self {
            Audience::Local(l) if shutting_down => {
                l.close_all(None, CloseCode::GoingAway, "hub shutting down")
            }
            // Deposed: they reconnect and resume from the next actor.
            Audience::Local(l) => l.close_all(None, CloseCode::GoingAway, "session moved"),
            Audience::Cluster(o) => o.responders.clear(),
        }
    }

    /// Nobody listens anywhere.
    pub fn is_empty(&self) -> bool {
        match self {
            Audience::Local(l) => l.is_empty(),
            Audience::Cluster(o) => o.presence.nodes.is_empty(),
        }
    }

    /// Users with at least one listener anywhere.
    pub fn online(&self) -> HashSet<UserId> {
        match self {
            Audience::Local(l) => l.online(),
            Audience::Cluster(o) => o
                .presence
                .nodes
                .values()
                .flat_map(|users| users.keys().cloned())
                .collect(),
        }
    }

    pub fn local(&mut self) -> Option<&mut Listeners> {
        match self {
            Audience::Local(l) => Some(l),
            Audience::Cluster(_) => None,
        }
    }

    pub fn owned(&mut self) -> Option<&mut Owned> {
        match self {
            Audience::Local(_) => None,
            Audience::Cluster(o) => Some(o),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crowd_hears_presence_at_most_once_per_window() {
        let mut w = PresenceWindow::default();
        let t0 = Instant::now();
        assert!(w.open(true, t0), "the first change goes out at once");
        let soon = t0 + CROWD_WINDOW / 4;
        assert!(!w.open(true, soon));
        assert_eq!(w.due, Some(t0 + CROWD_WINDOW), "held to the window's end");
        assert!(w.open(true, t0 + CROWD_WINDOW));
        assert_eq!(w.due, None);
        // Outside a crowd, nothing is held.
        assert!(w.open(false, t0 + CROWD_WINDOW + CROWD_WINDOW / 4));
    }
}
