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
    this.queue = []; // [{entryId, track, addedBy, addedAt, votes, pinned}]
    this.members = new Map(); // userId -> {name, online, avatar}
    this.party = emptyParty(); // {settings, nowPlaying, history, skipVotes, cohosts, banned}
    this.suggestions = []; // [{track, score, reason, fits}] (the latest `suggestions` frame)
    this.trackNames = new Map(); // trackId -> name, for reactions to tracks no longer queued
    this.pending = new Map(); // req -> op {type, frame, what, …}
    this.formerNames = new Map(); // userId -> name, of members removed
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

  get isCohost() {
    return Boolean(this.you && this.you.role === 'cohost');
  }

  /** Host or co-host: playback, pins, settings, removing people. */
  get canControl() {
    return this.open && (this.isHost || this.isCohost);
  }

  /** May we skip to the next track (`next`)? */
  get canSkip() {
    return this.open && (this.isHost || this.isCohost || this.party.settings.guestsSkip);
  }

  /** May we move entries by hand (only in `host` order)? */
  get canReorder() {
    if (!this.open || this.party.settings.order !== 'host') return false;
    return this.isHost || this.isCohost || this.party.settings.guestsReorder;
  }

  /** A member's role: host, cohost or member. */
  roleOf(userId) {
    if (this.info && userId === this.info.hostId) return 'host';
    if (this.party.cohosts.includes(userId)) return 'cohost';
    return 'member';
  }

  /** Skip votes needed now: max(1, ceil(threshold × online members)). */
  skipNeeded() {
    return Math.max(1, Math.ceil(this.party.settings.skipThreshold * this.onlineCount() - 1e-9));
  }

  /**
   * Where what plays is at hub time `hubNowMs` (ms since the epoch):
   * `positionMs` + (now − `at`) while playing, clamped to the track's length.
   */
  positionAt(hubNowMs) {
    const np = this.party.nowPlaying;
    if (!np) return 0;
    let pos = np.positionMs;
    if (np.state === 'playing') pos += Math.max(0, hubNowMs - Date.parse(np.at));
    const d = np.track && np.track.durationMs;
    return d ? Math.min(pos, d) : pos;
  }

  /** May we change the queue at all (joined, not ended)? */
  get open() {
    return this.loaded && !this.ended;
  }

  applySnapshot(snap) {
    this.version = snap.version;
    this.info = { ...snap.session };
    this.you = snap.you;
    this.queue = snap.queue.map((e) => ({ votes: [], pinned: false, ...e }));
    this.members = new Map(snap.members.map((m) => [m.userId, { name: m.name, online: m.online, avatar: m.avatar || null }]));
    this.party = { ...emptyParty(), ...(snap.party || {}) };
    this.party.settings = { ...emptyParty().settings, ...this.party.settings };
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
        votes: [],
        pinned: false,
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
    } else {
      this.applyParty(c, at);
    }
    this.version = u.version;
    return 'applied';
  }

  /** The party's ops (unknown ones are ignored: only the version moves). */
  applyParty(c, at) {
    const q = this.queue;
    const p = this.party;
    const d = c.detail || {};
    const move = () => {
      if (at === -1 || c.toIndex === null || c.toIndex === undefined) return;
      const [entry] = q.splice(at, 1);
      q.splice(Math.min(c.toIndex, q.length), 0, entry);
    };
    switch (c.op) {
      case 'play':
      case 'next':
      case 'pause':
      case 'seek': {
        const before = p.nowPlaying && p.nowPlaying.entryId;
        p.nowPlaying = d.nowPlaying || null;
        const now = p.nowPlaying && p.nowPlaying.entryId;
        if (now) {
          // The started entry leaves the queue.
          const i = q.findIndex((e) => e.entryId === now);
          if (i !== -1) q.splice(i, 1);
          this.trackNames.set(p.nowPlaying.track.id, p.nowPlaying.track.name);
        }
        if (now !== before) p.skipVotes = [];
        if (d.played) p.history = [...p.history.filter((h) => h.entryId !== d.played.entryId), d.played].slice(-20);
        break;
      }
      case 'vote':
        if (at !== -1) q[at].votes = d.votes || [];
        move();
        break;
      case 'skipVote':
        p.skipVotes = d.votes || [];
        break;
      case 'pin':
        if (at !== -1) q[at].pinned = true;
        move();
        break;
      case 'settings':
        if (d.settings) p.settings = { ...p.settings, ...d.settings };
        if (Array.isArray(d.queue)) {
          const byId = new Map(q.map((e) => [e.entryId, e]));
          const sorted = d.queue.map((id) => byId.get(id)).filter(Boolean);
          const rest = q.filter((e) => !d.queue.includes(e.entryId));
          this.queue = [...sorted, ...rest];
        }
        break;
      case 'role':
        if (this.info && d.hostId) this.info.hostId = d.hostId;
        if (Array.isArray(d.cohosts)) p.cohosts = d.cohosts;
        if (this.you) this.you = { ...this.you, role: this.roleOf(this.you.userId) };
        break;
      case 'kick':
        if (d.name) this.formerNames.set(d.userId, d.name);
        this.members.delete(d.userId);
        p.skipVotes = p.skipVotes.filter((id) => id !== d.userId);
        p.cohosts = p.cohosts.filter((id) => id !== d.userId);
        if (d.banned && !p.banned.includes(d.userId)) p.banned = [...p.banned, d.userId];
        break;
      case 'unban':
        p.banned = p.banned.filter((id) => id !== d.userId);
        break;
      default:
        break;
    }
  }

  /** The latest `suggestions` frame replaces the previous list. */
  applySuggestions(msg) {
    this.suggestions = Array.isArray(msg.items) ? msg.items : [];
  }

  applyPresence(p) {
    // Someone removed (kick) leaves presence after: not a member any more.
    if (!p.online && !this.members.has(p.userId)) return;
    const m = this.members.get(p.userId) || { name: p.name, online: false, avatar: null };
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

  /** May we remove this entry (a host or co-host, or whoever added it)? */
  canRemove(entry) {
    return this.open && (this.isHost || this.isCohost || entry.addedBy === this.me);
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

function emptyParty() {
  return {
    settings: { order: 'host', guestsAdd: true, guestsReorder: false, guestsSkip: false, guestQueueCap: null, skipThreshold: 0.5 },
    nowPlaying: null,
    history: [],
    skipVotes: [],
    cohosts: [],
    banned: [],
  };
}
