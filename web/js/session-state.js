// A session as this page knows it: who we are, the queue, the members, the
// version, and the changes we sent that the hub has not confirmed yet.
// Pure data and the protocol's rules for applying frames — no DOM, no
// network — so it can be tested on its own (tests/browser/unit.test.js).

export class SessionState {
  /** @param {string} id the session id; @param {string|null} me our user id */
  constructor(id, me) {
    this.id = id;
    this.me = me;
    this.version = null; // last version applied; null before the first snapshot
    this.info = null; // {id, name, active, hostId}
    this.you = null; // {userId, role}
    this.queue = []; // [{entryId, track, addedBy, addedAt}]
    this.members = new Map(); // userId -> {name, online}
    this.trackNames = new Map(); // trackId -> name, for reactions to tracks no longer queued
    this.pending = new Map(); // req -> op {type, frame, what, …}
    this.liked = new Set(); // trackIds we liked on this page
    this.ended = false;
    this.notMember = false; // an ended session we never joined: nothing to show
    this.missing = false; // no such session (close 4004)
  }

  get loaded() {
    return this.version !== null;
  }

  get isHost() {
    return Boolean(this.you && this.you.role === 'host');
  }

  /** May we change the queue at all (joined, not ended)? */
  get open() {
    return this.loaded && !this.ended;
  }

  applySnapshot(snap) {
    this.version = snap.version;
    this.info = { ...snap.session };
    this.you = snap.you;
    this.queue = snap.queue.slice();
    this.members = new Map(snap.members.map((m) => [m.userId, { name: m.name, online: m.online }]));
    for (const e of this.queue) this.trackNames.set(e.track.id, e.track.name);
    if (!snap.session.active) this.ended = true;
  }

  /**
   * Apply an `update`. Returns `applied`, `old` (already applied: a replay
   * overlap), `early` (no snapshot yet) or `gap` (versions were missed:
   * resume with `since`).
   */
  applyUpdate(u) {
    if (this.version === null) return 'early';
    if (u.version <= this.version) return 'old';
    if (u.version !== this.version + 1) return 'gap';
    const c = u.change;
    const q = this.queue;
    const at = c.entryId ? q.findIndex((e) => e.entryId === c.entryId) : -1;
    if (c.op === 'add') {
      // A track linked outside the hub (by null: the old app) counts as the host's.
      const entry = {
        entryId: c.entryId,
        track: c.track,
        addedBy: c.by ?? (this.info && this.info.hostId),
        addedAt: u.at,
      };
      this.trackNames.set(c.track.id, c.track.name);
      if (at === -1) q.splice(Math.min(c.index ?? q.length, q.length), 0, entry);
    } else if (c.op === 'remove') {
      if (at !== -1) q.splice(at, 1);
    } else if (c.op === 'reorder') {
      if (at !== -1) {
        const [entry] = q.splice(at, 1);
        q.splice(Math.min(c.toIndex, q.length), 0, entry);
      }
    } else if (c.op === 'member' && c.detail) {
      // A member added or removed outside the hub (the old app).
      const d = c.detail;
      if (d.member) {
        if (!this.members.has(d.userId)) this.members.set(d.userId, { name: d.name, online: false });
      } else {
        this.members.delete(d.userId);
      }
    }
    this.version = u.version;
    return 'applied';
  }

  applyPresence(p) {
    const m = this.members.get(p.userId) || { name: p.name, online: false };
    m.name = p.name;
    m.online = p.online;
    this.members.set(p.userId, m);
  }

  /** "you", the member's name, or "someone". */
  nameOf(userId) {
    if (userId && userId === this.me) return 'you';
    const m = this.members.get(userId);
    return m ? m.name : 'someone';
  }

  trackName(trackId) {
    return this.trackNames.get(trackId) || 'a track';
  }

  entry(entryId) {
    return this.queue.find((e) => e.entryId === entryId) || null;
  }

  indexOf(entryId) {
    return this.queue.findIndex((e) => e.entryId === entryId);
  }

  /** May we remove this entry (the host, or whoever added it)? */
  canRemove(entry) {
    return this.open && (this.isHost || entry.addedBy === this.me);
  }

  onlineCount() {
    let n = 0;
    for (const m of this.members.values()) if (m.online) n += 1;
    return n;
  }

  /** Pending ops of one type, oldest first. */
  pendingOf(type) {
    return [...this.pending.values()].filter((op) => op.type === type);
  }

  /** Ended: nothing waits any more; returns what was dropped. */
  end() {
    this.ended = true;
    if (this.info) this.info.active = false;
    const dropped = [...this.pending.values()];
    this.pending.clear();
    for (const m of this.members.values()) m.online = false;
    return dropped;
  }
}
