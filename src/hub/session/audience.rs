//! Who hears a session actor: its own listeners (a single hub), or, in a
//! cluster, every node's relays through the events it publishes and the
//! requesters its answers go back to. The actor says the same things to
//! either (`send_to`, `update`, `reaction`, presence, `close_*`); only
//! this module knows where they go.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use audotics_protocol::{CloseCode, ServerMsg, SessionId, UserId};
use axum::extract::ws::Utf8Bytes;
use tokio::sync::oneshot;

use super::listeners::{frame, ListenerId, Listeners};
use crate::cluster::wire::{Event, Mark, OpReply, Report, Stamped};
use crate::cluster::Cluster;

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
    session: SessionId,
    subject: async_nats::Subject,
    mark: Mark,
    /// Ops waiting for their answer, each under a temporary listener id
    /// (the actor's commit path answers listeners).
    responders: HashMap<ListenerId, oneshot::Sender<OpReply>>,
    next: ListenerId,
    presence: Presence,
    /// Users whose presence changed since the last flush → (name, joiners
    /// not to tell: node, listener).
    pub(super) dirty: HashMap<UserId, (String, Vec<(String, ListenerId)>)>,
    last_event: Instant,
    ticked: u64,
}

/// Listeners of the session on every node, from the nodes' reports.
#[derive(Default)]
struct Presence {
    nodes: HashMap<String, HashMap<UserId, (String, usize)>>,
}

impl Presence {
    fn count(&self, user: &UserId) -> usize {
        self.nodes
            .values()
            .filter_map(|users| users.get(user).map(|(_, n)| *n))
            .sum()
    }

    fn total(&self) -> usize {
        self.nodes
            .values()
            .flat_map(|users| users.values().map(|(_, n)| *n))
            .sum()
    }

    fn name(&self, user: &UserId) -> Option<String> {
        self.nodes
            .values()
            .find_map(|users| users.get(user).map(|(name, _)| name.clone()))
    }
}

impl Owned {
    pub fn new(cluster: Cluster, session: SessionId, epoch: i64, version: i64) -> Owned {
        let subject = cluster.events_subject(session.as_str());
        Owned {
            cluster,
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
        if let Some(relay) = self.cluster.relays().get(&self.session) {
            relay.event(stamped.clone());
        }
        self.cluster.publish(self.subject.clone(), stamped.encode());
    }

    /// A node's report: presence frames for the users whose count changed.
    pub fn report(&mut self, report: Report) {
        let node = self.presence.nodes.entry(report.node.clone()).or_default();
        let mut changed: Vec<(UserId, String)> = Vec::new();
        if report.full {
            let old = std::mem::take(node);
            for (user, (name, n)) in &old {
                let now = report.users.iter().find(|(u, _, _)| u == user.as_str());
                if now.is_none_or(|(_, _, m)| m != n) {
                    changed.push((user.clone(), name.clone()));
                }
            }
            for (user, name, n) in &report.users {
                let user = UserId::from_stored(user.clone());
                if old.get(&user).is_none_or(|(_, m)| m != n) {
                    changed.push((user.clone(), name.clone()));
                }
            }
        } else {
            for (user, name, _) in &report.users {
                changed.push((UserId::from_stored(user.clone()), name.clone()));
            }
        }
        for (user, name, n) in report.users {
            let user = UserId::from_stored(user);
            if n == 0 {
                node.remove(&user);
            } else {
                node.insert(user, (name, n));
            }
        }
        if node.is_empty() {
            self.presence.nodes.remove(&report.node);
        }
        let joined: Vec<(String, ListenerId)> = report
            .joined
            .iter()
            .map(|id| (report.node.clone(), *id))
            .collect();
        for (user, name) in changed {
            self.dirty
                .entry(user)
                .or_insert_with(|| (name, Vec::new()))
                .1
                .extend(joined.iter().cloned());
        }
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
            if let Some(users) = self.presence.nodes.remove(&node) {
                for (user, (name, _)) in users {
                    self.dirty.entry(user).or_insert_with(|| (name, Vec::new()));
                }
            }
        }
    }

    fn flush_presence(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        if dirty.is_empty() {
            return;
        }
        let total = self.presence.total();
        for (user, (name, except)) in dirty {
            let name = self.presence.name(&user).unwrap_or(name);
            let online = self.presence.count(&user) > 0;
            let frame = frame(&ServerMsg::Presence {
                user_id: user.into_string(),
                name,
                online,
                listeners: total,
            });
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
            Audience::Local(l) => l.broadcast(frame),
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
            Audience::Local(l) => l.close_user(user, code, kick_reason(code)),
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

/// The close reason for a kick's code.
pub fn kick_reason(code: CloseCode) -> &'static str {
    match code {
        CloseCode::Banned => "banned from the session",
        CloseCode::Removed => "removed from the session",
        _ => "no longer a member",
    }
}
