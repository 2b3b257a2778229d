// The open session: ties the connection, the session state and the page
// together. Sends ops (each with a `req`, kept until acked and re-sent after
// a reconnect, so nothing is lost or applied twice), turns the hub's answers
// into plain words in the one notice, offers Undo after Remove, toasts
// others' activity, and shows an ended session as it was left (asking REST
// for the snapshot when the join is refused with 4010).

import { api } from './api.js';
import { auth } from './auth.js';
import { Connection } from './connection.js';
import { plural, problem, quoted, reactionSentence, refused } from './messages.js';
import * as notice from './notice.js';
import { SessionState } from './session-state.js';
import * as toasts from './toasts.js';

const UNAVAILABLE_RETRIES = 3;

/** Party ops that change who is who, and those that change playback/votes. */
const PEOPLE_OPS = new Set(['member', 'role', 'kick', 'unban']);
const PARTY_OPS = new Set(['play', 'pause', 'seek', 'next', 'vote', 'skipVote', 'pin', 'settings']);

let reqCounter = 0;
function newReq() {
  reqCounter += 1;
  const rand = crypto.getRandomValues(new Uint32Array(2));
  return `w${Date.now().toString(36)}-${rand[0].toString(36)}${rand[1].toString(36)}-${reqCounter}`;
}

export class Session {
  /**
   * @param {string} id
   * @param {object} hooks
   * @param {(what: string) => void} hooks.onChange `queue`, `people`, `conn` or `all`
   * @param {(r: {text: string, at: string, kind: string}) => void} hooks.onReaction
   * @param {boolean} [hooks.suggestions] ask for "Up next for this room" (default true)
   * @param {boolean} [hooks.watch] join as a screen that watches (the TV view)
   * @param {object} [who] another account than the signed-in one (the TV
   *   view's): `token()` and `me`, and `onUnauthorized()` instead of signing out
   */
  constructor(id, hooks, who = null) {
    this.id = id;
    this.hooks = hooks;
    this.who = who;
    this.state = new SessionState(id, who ? who.me : auth.user && auth.user.id);
    this.connState = 'connecting';
    this.nextMove = null; // a move asked for while another is in flight
    this.closed = false;
    this.clockOffset = 0; // the hub's clock minus ours, in ms (from pongs)
    this.removed = null; // 'removed' | 'banned' once a host took us out
    this.conn = new Connection({
      sessionId: id,
      token: () => (who ? who.token() : auth.token),
      since: () => this.state.version,
      onFrame: (f) => this.frame(f),
      onState: (s) => this.connectionState(s),
      onClosed: (why) => this.finalClose(why),
      onClock: (offset) => { this.clockOffset = offset; },
      suggestions: hooks.suggestions !== false,
      watch: hooks.watch === true,
    });
  }

  start() {
    notice.setConnection('connecting');
    this.conn.start();
  }

  /** Leave the session page (the hub sees us leave). */
  close() {
    this.closed = true;
    this.conn.stop();
    notice.setConnection(null);
    notice.setWaiting([]);
    toasts.clearToasts();
  }

  changed(what) {
    if (!this.closed) this.hooks.onChange(what);
  }

  // ------------------------------------------------------------ frames

  frame(msg) {
    const s = this.state;
    switch (msg.type) {
      case 'snapshot':
        s.applySnapshot(msg);
        if (s.ended) {
          this.ended({ fresh: true });
          return;
        }
        this.resendPending();
        this.changed('all');
        break;
      case 'resumed':
        // The missed updates follow; our version stays until they arrive.
        this.resendPending();
        break;
      case 'update':
        this.update(msg);
        break;
      case 'ack':
        this.acked(msg);
        break;
      case 'error':
        this.refusedOp(msg);
        break;
      case 'presence':
        s.applyPresence(msg);
        this.changed('people');
        break;
      case 'interaction':
        this.interaction(msg);
        break;
      case 'ended':
        this.ended();
        break;
      case 'suggestions':
        s.applySuggestions(msg);
        this.changed('suggestions');
        break;
      default:
        console.info('audotics: a frame this page does not know', msg.type);
    }
  }

  update(u) {
    const s = this.state;
    const result = s.applyUpdate(u);
    if (result === 'gap') {
      console.info(`audotics: version gap ${s.version} → ${u.version}; resuming`);
      this.conn.reconnectNow();
      return;
    }
    if (result !== 'applied') return;
    const c = u.change;
    if (c.op === 'add' && c.by && c.by !== s.me) {
      toasts.activity({ kind: 'add', who: s.nameOf(c.by), track: c.track.name });
    }
    if (PEOPLE_OPS.has(c.op)) this.changed('people');
    else if (PARTY_OPS.has(c.op)) this.changed('party');
    else this.changed('queue');
  }

  /** The hub's clock now, in ms since the epoch. */
  hubNow() {
    return Date.now() + this.clockOffset;
  }

  interaction(msg) {
    const s = this.state;
    const self = msg.userId === s.me;
    const track = s.trackName(msg.trackId);
    const who = s.nameOf(msg.userId);
    this.hooks.onReaction({ text: reactionSentence(who, self, msg.kind, track), at: msg.at, kind: msg.kind });
    if (!self) toasts.activity({ kind: 'react', who, reaction: msg.kind, track });
  }

  connectionState(state) {
    this.connState = state;
    const canRetry = state === 'unreachable' || state === 'stalled' || state === 'busy';
    notice.setConnection(state, canRetry ? { label: 'Retry now', run: () => this.conn.reconnectNow() } : null);
    this.changed('conn');
  }

  finalClose(why) {
    if (why === 'removed' || why === 'banned') {
      this.removed = why;
      this.state.end();
      this.connState = why;
      notice.setConnection(why);
      notice.setWaiting([]);
      toasts.clearToasts();
      this.changed('all');
    } else if (why === 'ended') {
      this.ended();
    } else if (why === 'unauthorized' && this.who) {
      this.who.onUnauthorized();
    } else if (why === 'unauthorized') {
      notice.showError('Your sign-in has expired. Sign in again.');
      auth.clear();
    } else {
      this.state.missing = true;
      notice.setConnection('missing');
      this.changed('all');
    }
  }

  /**
   * The session is over: show it as it was left. Unless a snapshot just
   * said so (`fresh`), ask REST for it: the end may have come while we were
   * away, or before we ever saw the queue (a join refused with 4010).
   */
  async ended({ fresh = false } = {}) {
    if (this.endSeen) return;
    this.endSeen = true;
    const s = this.state;
    const dropped = s.end();
    this.conn.stop();
    this.connState = 'ended';
    notice.setConnection('ended');
    notice.setWaiting([]);
    if (dropped.length) {
      notice.showError(`The session ended before ${dropped.length === 1 ? 'your change' : plural(dropped.length, 'change')} could be sent: ${dropped.map((op) => op.what).join(', ')}.`);
    }
    for (const op of dropped) op.done({ ok: false, code: 'ended' });
    toasts.clearToasts();
    this.changed('all');
    if (!fresh) await this.loadEnded();
  }

  /** The join was refused with 4010 (or the end came while we were away): ask REST. */
  async loadEnded() {
    try {
      const snap = await api('GET', `/sessions/${this.id}`);
      if (this.closed) return;
      this.state.applySnapshot(snap);
      this.state.end();
    } catch (e) {
      if (this.closed) return;
      if (e.status === 403) {
        this.state.notMember = true;
      } else if (!this.state.loaded) {
        notice.showError(`Couldn't load how the queue was left. ${problem(e)}`, {
          label: 'Try again',
          run: () => { notice.clearError(); this.loadEnded(); },
        });
      }
    }
    this.changed('all');
  }

  // ------------------------------------------------------------ ops

  /**
   * Send an op with a fresh `req`; kept until acked and re-sent after
   * reconnects. Resolves {ok, code} once the hub answered (never rejects).
   */
  op(op) {
    const s = this.state;
    if (s.ended) {
      notice.showError('This session has ended; the queue can no longer change.');
      return Promise.resolve({ ok: false, code: 'ended' });
    }
    const req = newReq();
    op.frame = { ...op.frame, req };
    op.tries = 0;
    const answered = new Promise((resolve) => { op.done = resolve; });
    s.pending.set(req, op);
    this.conn.send(op.frame);
    this.pendingChanged();
    return answered;
  }

  resendPending() {
    for (const op of this.state.pending.values()) this.conn.send(op.frame);
  }

  pendingChanged() {
    notice.setWaiting([...this.state.pending.values()].map((op) => op.what));
    this.changed('queue');
  }

  acked(msg) {
    const op = this.state.pending.get(msg.req);
    if (!op) return;
    this.state.pending.delete(msg.req);
    op.done({ ok: true });
    if (op.type === 'remove') {
      const name = op.track.name;
      toasts.confirm(`Removed ${quoted(name)}.`, {
        label: 'Undo',
        ariaLabel: `Undo removing ${name}`,
        run: () => this.add({ trackId: op.track.id, name, index: op.index }),
      });
    }
    if (op.type === 'reorder') this.moveDone();
    this.pendingChanged();
  }

  refusedOp(msg) {
    const s = this.state;
    const op = msg.req ? s.pending.get(msg.req) : null;
    if (!op) {
      // Not about one of our ops (a bad frame: a bug here, not the user's).
      console.warn('audotics: the hub refused a frame', msg.code, msg.message);
      return;
    }
    console.info(`audotics: ${op.type} refused: ${msg.code}: ${msg.message}`);
    if (msg.code === 'unavailable' && op.tries < UNAVAILABLE_RETRIES) {
      // Not applied; safe to send again with the same req.
      op.tries += 1;
      setTimeout(() => { if (s.pending.has(msg.req)) this.conn.send(op.frame); }, 1500 * op.tries);
      return;
    }
    s.pending.delete(msg.req);
    if (op.type === 'interaction' && op.frame.kind === 'like') s.liked.delete(op.frame.trackId);
    op.done({ ok: false, code: msg.code });
    notice.showError(refused(op, msg.code));
    if (op.type === 'reorder') this.moveDone();
    this.pendingChanged();
  }

  /** Add a track by its catalog id (`trackId`) or by metadata (`track`), optionally at `index`. */
  add({ trackId, track, name, index }) {
    const frame = trackId ? { type: 'add', trackId } : { type: 'add', track };
    if (Number.isInteger(index)) frame.index = Math.max(0, Math.min(index, this.state.queue.length));
    return this.op({ type: 'add', frame, what: `add ${quoted(name)}`, name, index: frame.index });
  }

  like(entryId) {
    const e = this.state.entry(entryId);
    if (!e || this.state.liked.has(e.track.id)) return;
    this.state.liked.add(e.track.id);
    this.op({
      type: 'interaction',
      frame: { type: 'interaction', trackId: e.track.id, kind: 'like' },
      what: `send your like for ${quoted(e.track.name)}`,
    });
  }

  skip(entryId) {
    const e = this.state.entry(entryId);
    if (!e) return;
    this.op({
      type: 'interaction',
      frame: { type: 'interaction', trackId: e.track.id, kind: 'skip' },
      what: `send your skip vote for ${quoted(e.track.name)}`,
    });
  }

  remove(entryId) {
    const s = this.state;
    const index = s.indexOf(entryId);
    if (index === -1) return;
    const e = s.queue[index];
    if (s.pendingOf('remove').some((op) => op.frame.entryId === entryId)) return;
    this.op({
      type: 'remove',
      frame: { type: 'remove', entryId },
      what: `remove ${quoted(e.track.name)}`,
      track: e.track,
      index,
    });
  }

  /** Where an entry is headed: the target of a move not done yet, else where it is. */
  plannedIndex(entryId) {
    if (this.nextMove && this.nextMove.entryId === entryId) return this.nextMove.toIndex;
    const inFlight = this.state.pendingOf('reorder').find((op) => op.frame.entryId === entryId);
    return inFlight ? inFlight.frame.toIndex : this.state.indexOf(entryId);
  }

  /**
   * Move an entry (host). One move is in flight at a time, each based on the
   * version it saw; a move asked for meanwhile waits for the ack (the latest
   * wish wins), so quick repeated moves do not refuse each other.
   */
  move(entryId, toIndex) {
    const s = this.state;
    if (!s.open || !s.isHost) return;
    if (s.pendingOf('reorder').length) {
      this.nextMove = { entryId, toIndex };
      return;
    }
    this.sendMove(entryId, toIndex);
  }

  sendMove(entryId, toIndex) {
    const s = this.state;
    const from = s.indexOf(entryId);
    if (from === -1) return;
    const to = Math.max(0, Math.min(toIndex, s.queue.length - 1));
    if (to === from) return;
    this.op({
      type: 'reorder',
      frame: { type: 'reorder', entryId, toIndex: to, baseVersion: s.version },
      what: `move ${quoted(s.queue[from].track.name)}`,
    });
  }

  moveDone() {
    const next = this.nextMove;
    this.nextMove = null;
    if (next) this.sendMove(next.entryId, next.toIndex);
  }

  // ------------------------------------------------------------ the party

  party(type, fields, what) {
    return this.op({ type, frame: { type, ...fields }, what });
  }

  play(entryId) {
    const e = entryId ? this.state.entry(entryId) : null;
    return this.party('play', entryId ? { entryId } : {}, e ? `play ${quoted(e.track.name)}` : 'play');
  }

  pause() {
    return this.party('pause', {}, 'pause');
  }

  seek(positionMs) {
    return this.party('seek', { positionMs: Math.max(0, Math.round(positionMs)) }, 'seek');
  }

  next() {
    return this.party('next', {}, 'skip to the next track');
  }

  vote(entryId, up) {
    const e = this.state.entry(entryId);
    if (!e) return Promise.resolve({ ok: false });
    return this.party('vote', { entryId, up }, `${up ? 'vote for' : 'take back your vote for'} ${quoted(e.track.name)}`);
  }

  skipVote(up) {
    return this.party('skipVote', { up }, up ? 'vote to skip' : 'take back your skip vote');
  }

  pin(entryId) {
    const e = this.state.entry(entryId);
    if (!e) return Promise.resolve({ ok: false });
    return this.party('pin', { entryId }, `play ${quoted(e.track.name)} next`);
  }

  settings(changes) {
    return this.party('settings', changes, 'change the settings');
  }

  setRole(userId, role) {
    const who = this.state.nameOf(userId);
    const what = role === 'host' ? `hand the party over to ${who}` : role === 'cohost' ? `make ${who} a co-host` : `make ${who} a guest`;
    return this.party('role', { userId, role }, what);
  }

  kick(userId, ban) {
    return this.party('kick', { userId, ban: Boolean(ban) }, `${ban ? 'ban' : 'remove'} ${this.state.nameOf(userId)}`);
  }

  unban(userId) {
    return this.party('unban', { userId }, 'lift the ban');
  }

  /** End the session for everyone (host). */
  async end() {
    try {
      await api('POST', `/sessions/${this.id}/end`);
      await this.ended();
      return true;
    } catch (e) {
      notice.showError(`Couldn't end the session. ${problem(e)}`);
      return false;
    }
  }
}
