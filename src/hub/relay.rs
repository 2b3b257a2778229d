//! A node's relay of one session: the listeners of the session connected to
//! this node, fed by the events its owner (on any node, this one included)
//! publishes.
//!
//! The relay delivers updates in version order and never skips one: an
//! update that arrives after a gap (NATS core is at-most-once) waits while
//! the missing versions are read from the Postgres log; duplicates are
//! dropped by version. An op's answer from the owner is held until the
//! events published before it were delivered, so a client sees its change
//! before its `ack`, as on a single hub. Presence changes go to the owner
//! as reports, which aggregates every node's and publishes the frames.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use audotics_protocol::{CloseCode, ServerMsg, SessionId, UserId};
use axum::extract::ws::Utf8Bytes;
use futures::StreamExt;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, watch};

use super::outbox::Outbox;
use super::registry::Handle;
use super::session::join::Recent;
use super::session::listeners::{frame, Asks, ListenerId, Listeners};
use super::snapshot;
use crate::cluster::wire::{Event, Mark, OpReply, Opening, Report, Stamped};
use crate::cluster::Cluster;
use crate::db::{log, sessions};
use crate::metrics::Metrics;

/// Commands waiting for a relay at most.
const INBOX: usize = 4096;
/// A relay without listeners stops after this long.
const LINGER: Duration = Duration::from_secs(5);
/// An answer waits this long at most for the unversioned events (reactions,
/// presence) published before it; updates it waits for always.
const ORDER_WAIT: Duration = Duration::from_millis(300);
/// A missing version is read from Postgres after this long (it may just be
/// late).
const GAP_WAIT: Duration = Duration::from_millis(100);
/// Versions read from the log per fill at most.
const FILL_MAX: i64 = 1000;
/// Updates held before the first joiner at most.
const EARLY_MAX: usize = 4096;

/// Where a relay sends its presence reports (the owner, local or remote).
pub type ReportTo = Arc<dyn Fn(&SessionId, Report) + Send + Sync>;

/// What a relay is asked.
pub enum RelayCmd {
    /// A joiner the owner accepted, with its first frames: register it.
    Attach {
        user: UserId,
        name: String,
        outbox: Outbox,
        opening: Opening,
        asks: Asks,
        reply: oneshot::Sender<Option<ListenerId>>,
    },
    Leave {
        listener: ListenerId,
        /// Told once the listener is gone (after its held answers).
        done: oneshot::Sender<()>,
    },
    /// An op's answer for `listener`, in order after its earlier ones.
    Answer {
        listener: ListenerId,
        reply: OpReply,
    },
    /// An event of the owner on this node.
    Event(Stamped),
}

/// The link to one relay.
#[derive(Clone)]
pub struct RelayHandle {
    tx: mpsc::Sender<RelayCmd>,
    ready: watch::Receiver<Option<bool>>,
}

impl Handle for RelayHandle {
    fn same(&self, other: &Self) -> bool {
        self.tx.same_channel(&other.tx)
    }
}

impl RelayHandle {
    /// Wait until the relay hears the session's events (subscribed); false
    /// if it could not.
    pub async fn ready(&self) -> bool {
        let mut ready = self.ready.clone();
        let up = match ready.wait_for(|r| r.is_some()).await {
            Ok(r) => r.unwrap_or(false),
            Err(_) => false,
        };
        up
    }

    /// Register a joiner; `None` if the relay stopped meanwhile.
    pub async fn attach(
        &self,
        user: UserId,
        name: String,
        outbox: Outbox,
        opening: Opening,
        asks: Asks,
    ) -> Option<ListenerId> {
        let (reply, rx) = oneshot::channel();
        let cmd = RelayCmd::Attach {
            user,
            name,
            outbox,
            opening,
            asks,
            reply,
        };
        self.tx.send(cmd).await.ok()?;
        rx.await.ok().flatten()
    }

    /// Remove a listener, once the answers held for it are out; returns
    /// when it is gone (or the relay is).
    pub async fn leave(&self, listener: ListenerId) {
        let (done, gone) = oneshot::channel();
        if self
            .tx
            .send(RelayCmd::Leave { listener, done })
            .await
            .is_ok()
        {
            let _ = gone.await;
        }
    }

    /// Hand over an op's answer; false if the relay is gone.
    pub async fn answer(&self, listener: ListenerId, reply: OpReply) -> bool {
        self.tx
            .send(RelayCmd::Answer { listener, reply })
            .await
            .is_ok()
    }

    /// An event of the local owner. Never waits: a full inbox drops it (the
    /// relay fills the gap from Postgres).
    pub fn event(&self, event: Stamped) {
        let _ = self.tx.try_send(RelayCmd::Event(event));
    }
}

/// A relay ready to run (see [`RelayTask::run`]).
pub struct RelayTask {
    relay: Relay,
    rx: mpsc::Receiver<RelayCmd>,
    ready: watch::Sender<Option<bool>>,
}

impl RelayTask {
    /// Serve until no listener is left for a while; `on_stop` unregisters
    /// the relay first.
    pub async fn run(self, on_stop: impl FnOnce()) {
        self.relay.run(self.rx, self.ready, on_stop).await
    }
}

/// A relay for `session`, and its task to spawn.
pub fn new(
    session: SessionId,
    cluster: Cluster,
    db: PgPool,
    metrics: Arc<Metrics>,
    report_to: ReportTo,
) -> (RelayHandle, RelayTask) {
    let (tx, rx) = mpsc::channel(INBOX);
    let (ready_tx, ready) = watch::channel(None);
    let handle = RelayHandle { tx, ready };
    let relay = Relay {
        node: cluster.node().to_owned(),
        listeners: Listeners::new(metrics.clone()),
        cluster,
        session,
        db,
        metrics,
        report_to,
        playlist: None,
        delivered: None,
        epoch: 0,
        seen: 0,
        starts: HashMap::new(),
        held: HashMap::new(),
        leaving: HashMap::new(),
        early: BTreeMap::new(),
        recent: Recent::default(),
        full_report: false,
        ended: false,
    };
    let task = RelayTask {
        relay,
        rx,
        ready: ready_tx,
    };
    (handle, task)
}

/// An op's answer waiting for the events before it.
struct Held {
    reply: OpReply,
    since: Instant,
}

struct Relay {
    session: SessionId,
    node: String,
    cluster: Cluster,
    db: PgPool,
    metrics: Arc<Metrics>,
    report_to: ReportTo,
    listeners: Listeners,
    /// The session's playlist (the log is read by it); known from the first
    /// joiner.
    playlist: Option<String>,
    /// The last version every listener has (from the first joiner on).
    delivered: Option<i64>,
    /// The owner's stream this relay follows, and the last event seen in it.
    epoch: i64,
    seen: u64,
    /// Joiners whose opening is ahead of `delivered`: they skip updates up
    /// to it.
    starts: HashMap<ListenerId, i64>,
    held: HashMap<ListenerId, VecDeque<Held>>,
    /// Listeners that left with answers still held: they go once those
    /// are out (a `leave` right after ops still gets their acks).
    leaving: HashMap<ListenerId, oneshot::Sender<()>>,
    /// Updates that arrived ahead of `delivered` (or before the first
    /// joiner), by version.
    early: BTreeMap<i64, Utf8Bytes>,
    recent: Recent,
    /// The owner changed (or NATS came back): report every listener.
    full_report: bool,
    ended: bool,
}

impl Relay {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<RelayCmd>,
        ready: watch::Sender<Option<bool>>,
        on_stop: impl FnOnce(),
    ) {
        let subject = self.cluster.events_subject(self.session.as_str());
        let mut sub = match self.cluster.subscribe(subject).await {
            Ok(sub) => sub,
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to the session's events");
                let _ = ready.send(Some(false));
                on_stop();
                return;
            }
        };
        let _ = ready.send(Some(true));
        self.metrics.relays.inc();
        let mut reconnects = self.cluster.reconnects();
        reconnects.mark_unchanged();
        let mut idle_since = Some(Instant::now());
        let mut check = tokio::time::interval(GAP_WAIT);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd).await,
                    None => break,
                },
                m = sub.next() => match m {
                    Some(m) => match Stamped::decode(m.payload) {
                        Ok(ev) => {
                            self.metrics.events_received.inc();
                            self.event(ev).await;
                        }
                        Err(e) => tracing::warn!(error = %e, "dropping an event"),
                    },
                    None => break,
                },
                changed = reconnects.changed() => {
                    if changed.is_err() { break }
                    // What was published meanwhile is lost: catch up from
                    // Postgres, and tell the owner who is here.
                    self.full_report = true;
                    if let Ok(v) = sessions::version(&self.db, self.session.as_str()).await {
                        self.catch_up(v).await;
                    }
                }
                _ = check.tick() => self.check_held().await,
            }
            self.release_held();
            self.report();
            if self.ended {
                break;
            }
            match (self.listeners.is_empty(), idle_since) {
                (true, None) => idle_since = Some(Instant::now()),
                (true, Some(t)) if t.elapsed() >= LINGER => break,
                (false, _) => idle_since = None,
                _ => {}
            }
        }
        on_stop();
        self.metrics.relays.dec();
        // Listeners left (NATS gave up): they reconnect and resume.
        self.listeners
            .close_all(None, CloseCode::GoingAway, "session moved");
        rx.close();
        // Joiners still queued look the session up again.
        while rx.recv().await.is_some() {}
    }

    async fn command(&mut self, cmd: RelayCmd) {
        match cmd {
            RelayCmd::Attach {
                user,
                name,
                outbox,
                opening,
                asks,
                reply,
            } => {
                let id = self.attach(user, name, outbox, opening, asks).await;
                let _ = reply.send(id);
            }
            RelayCmd::Leave { listener, done } => {
                if self.held.contains_key(&listener) {
                    self.leaving.insert(listener, done);
                } else {
                    self.remove(listener);
                    let _ = done.send(());
                }
            }
            RelayCmd::Answer { listener, reply } => {
                self.held.entry(listener).or_default().push_back(Held {
                    reply,
                    since: Instant::now(),
                });
            }
            RelayCmd::Event(ev) => self.event(ev).await,
        }
    }

    async fn attach(
        &mut self,
        user: UserId,
        name: String,
        outbox: Outbox,
        opening: Opening,
        asks: Asks,
    ) -> Option<ListenerId> {
        self.follow(opening.mark);
        self.playlist = Some(opening.playlist_id.clone());
        let (version, frames) = if opening.frames.is_empty() {
            // Too large to carry over NATS: read the snapshot here.
            let snap = snapshot::load(&self.db, self.session.as_str(), &user)
                .await
                .ok()?;
            (snap.version, vec![frame(&ServerMsg::Snapshot(snap))])
        } else {
            let frames = opening.frames.into_iter().map(Utf8Bytes::from).collect();
            (opening.version, frames)
        };
        let mut frames: Vec<Utf8Bytes> = frames;
        if asks.suggestions {
            frames.extend(opening.suggestions.map(Utf8Bytes::from));
        }
        let id = self.listeners.add(user, name, outbox.clone(), asks);
        for f in frames {
            if outbox.push_opening(f).is_err() {
                self.listeners.remove(id);
                return Some(id);
            }
        }
        match self.delivered {
            None => {
                // The first joiner sets where this relay's stream starts.
                self.delivered = Some(version);
                self.early = self.early.split_off(&(version + 1));
                self.drain_early().await;
            }
            Some(d) if version < d => {
                // The relay is ahead of the owner's opening: catch up.
                let missed = match self.recent.after(version) {
                    Some(frames) => Some(frames),
                    None => self.read_log(version, d - version).await,
                };
                match missed {
                    Some(frames) => {
                        for f in frames {
                            self.listeners.send_to(id, f);
                        }
                    }
                    None => {
                        // Cannot complete its stream: resume later.
                        self.listeners
                            .close(id, CloseCode::TooSlow, "too slow: resume with since");
                        return Some(id);
                    }
                }
            }
            Some(d) if version > d => {
                self.starts.insert(id, version);
                self.catch_up(version).await;
            }
            Some(_) => {}
        }
        self.listeners.announce(id);
        Some(id)
    }

    /// Note an event's place in the owner's stream; a new owner gets a
    /// full report.
    fn follow(&mut self, mark: Mark) -> bool {
        if mark.epoch < self.epoch {
            return false;
        }
        if mark.epoch > self.epoch {
            self.epoch = mark.epoch;
            self.seen = 0;
            self.full_report = true;
        }
        self.seen = self.seen.max(mark.seq);
        true
    }

    async fn event(&mut self, ev: Stamped) {
        if !self.follow(ev.mark) {
            // A deposed owner's (it cannot have committed anything).
            return;
        }
        match ev.event {
            Event::Update(f) => self.update(ev.mark.version, f).await,
            Event::Reaction(f) => self.listeners.broadcast(f),
            Event::Presence { frame, except } => {
                let mine: Vec<ListenerId> = except
                    .into_iter()
                    .filter(|(node, _)| *node == self.node)
                    .map(|(_, id)| id)
                    .collect();
                self.listeners.broadcast_except(frame, &mine);
            }
            Event::Ended(f) => {
                self.listeners
                    .close_all(Some(f), CloseCode::Ended, "session ended");
                self.ended = true;
            }
            Event::Kick { user, code } => {
                let user = UserId::from_stored(user);
                let code = CloseCode::from_code(code).unwrap_or(CloseCode::Forbidden);
                self.listeners.kick(&user, code);
            }
            Event::Suggestions(f) => self.listeners.broadcast_suggestions(f),
            Event::Owner(_) | Event::Tick => self.catch_up(ev.mark.version).await,
        }
    }

    /// An update from the owner: deliver it in order.
    async fn update(&mut self, version: i64, f: Utf8Bytes) {
        match self.delivered {
            Some(d) if version <= d => {}
            Some(d) if version == d + 1 => {
                self.deliver(version, f);
                self.drain_early().await;
            }
            _ => {
                if self.early.len() < EARLY_MAX {
                    self.early.insert(version, f);
                }
                if self.delivered.is_some() {
                    // A gap: read it from the log, then go on.
                    self.catch_up(version - 1).await;
                    self.drain_early().await;
                }
            }
        }
    }

    fn deliver(&mut self, version: i64, f: Utf8Bytes) {
        if self.starts.is_empty() {
            self.listeners.broadcast(f.clone());
        } else {
            let skip: Vec<ListenerId> = self
                .starts
                .iter()
                .filter(|(_, s)| **s >= version)
                .map(|(id, _)| *id)
                .collect();
            self.listeners.broadcast_except(f.clone(), &skip);
            self.starts.retain(|_, s| *s > version);
        }
        self.recent.push(version, f);
        self.delivered = Some(version);
    }

    /// Deliver the updates that were waiting for the ones before them.
    async fn drain_early(&mut self) {
        while let Some(d) = self.delivered {
            let Some(entry) = self.early.first_entry() else {
                return;
            };
            let v = *entry.key();
            if v <= d {
                entry.remove();
            } else if v == d + 1 {
                let f = entry.remove();
                self.deliver(v, f);
            } else {
                return;
            }
        }
    }

    /// Make sure every version up to `version` is delivered, reading the
    /// ones not yet here from the log.
    async fn catch_up(&mut self, version: i64) {
        let Some(mut d) = self.delivered else {
            return;
        };
        while d < version {
            // What arrived already needs no read.
            if self.early.contains_key(&(d + 1)) {
                self.drain_early().await;
                d = self.delivered.unwrap_or(d);
                continue;
            }
            let want = (version - d).min(FILL_MAX);
            let Some(frames) = self.read_log(d, want).await else {
                return;
            };
            if frames.is_empty() {
                return;
            }
            self.metrics.gaps_filled.inc();
            for (i, f) in frames.into_iter().enumerate() {
                self.deliver(d + 1 + i as i64, f);
            }
            self.drain_early().await;
            d = self.delivered.unwrap_or(d);
        }
    }

    /// The `update` frames of the `n` versions after `after`, from the log:
    /// only the run of consecutive versions found.
    async fn read_log(&self, after: i64, n: i64) -> Option<Vec<Utf8Bytes>> {
        let playlist = self.playlist.as_deref()?;
        let records = log::after(&self.db, self.session.as_str(), playlist, after, n)
            .await
            .map_err(|e| tracing::warn!(error = %e, "cannot read the log to fill a gap"))
            .ok()?;
        let frames = records
            .iter()
            .enumerate()
            .take_while(|(i, r)| r.version == after + 1 + *i as i64)
            .map(|(_, r)| frame(&r.update()))
            .collect();
        Some(frames)
    }

    /// Hand out every held answer whose events are delivered.
    fn release_held(&mut self) {
        if self.held.is_empty() && self.leaving.is_empty() {
            return;
        }
        let mut ready: Vec<(ListenerId, Utf8Bytes)> = Vec::new();
        let (delivered, epoch, seen) = (self.delivered, self.epoch, self.seen);
        self.held.retain(|id, queue| {
            while let Some(h) = queue.front() {
                let m = h.reply.mark;
                let versions = m.version <= 0 || delivered.is_some_and(|d| d >= m.version);
                let others = m.epoch < epoch
                    || (m.epoch == epoch && seen >= m.seq)
                    || h.since.elapsed() >= ORDER_WAIT;
                if !(versions && others) {
                    break;
                }
                let h = queue.pop_front().expect("front exists");
                ready.push((*id, h.reply.frame));
            }
            !queue.is_empty()
        });
        for (id, f) in ready {
            self.listeners.send_to(id, f);
        }
        let gone: Vec<ListenerId> = self
            .leaving
            .keys()
            .filter(|id| !self.held.contains_key(id))
            .copied()
            .collect();
        for id in gone {
            self.remove(id);
            if let Some(done) = self.leaving.remove(&id) {
                let _ = done.send(());
            }
        }
    }

    /// Forget a listener that left.
    fn remove(&mut self, listener: ListenerId) {
        self.listeners.remove(listener);
        self.starts.remove(&listener);
        self.held.remove(&listener);
    }

    /// Answers waiting on a version not yet here for [`GAP_WAIT`]: read it.
    async fn check_held(&mut self) {
        let wanted = self
            .held
            .values()
            .filter_map(|q| q.front())
            .filter(|h| h.since.elapsed() >= GAP_WAIT)
            .map(|h| h.reply.mark.version)
            .max();
        if let Some(v) = wanted {
            self.catch_up(v).await;
        }
    }

    /// Tell the owner what changed among this node's listeners.
    fn report(&mut self) {
        let changes = self.listeners.take_changes();
        if changes.is_empty() && !self.full_report {
            return;
        }
        let joined: Vec<ListenerId> = changes.iter().flat_map(|c| c.3.iter().copied()).collect();
        let users: Vec<(String, String, usize)> = if self.full_report {
            let mut users: Vec<(String, String, usize)> = self
                .listeners
                .by_user()
                .into_iter()
                .map(|(u, (name, n))| (u.into_string(), name, n))
                .collect();
            // Users who just left count 0 (the owner may still list them).
            for (u, name, n, _) in &changes {
                if *n == 0 {
                    users.push((u.to_string(), name.clone(), 0));
                }
            }
            users
        } else {
            changes
                .into_iter()
                .map(|(u, name, n, _)| (u.into_string(), name, n))
                .collect()
        };
        let report = Report {
            node: self.node.clone(),
            full: self.full_report,
            users,
            joined,
        };
        self.full_report = false;
        (self.report_to)(&self.session, report);
    }
}
