// One WebSocket to the hub for one session, kept honest: it joins (with
// `since` to resume), runs the application heartbeat (browsers cannot see
// WebSocket pings, so a half-open socket would otherwise look fine forever),
// reconnects with backoff, and listens to the browser's online/offline and
// visibility hints. It knows nothing of queues: frames go to `onFrame`, its
// state to `onState`, and the closes that end the session to `onClosed`.

/** The decided heartbeat (protocol/README.md): a ping every 10 s… */
export const PING_EVERY_MS = 10000;
/** …and a connection without a pong for 5 s is dead. */
export const PONG_WITHIN_MS = 5000;
/** A socket that has not opened after this long is given up on. */
const OPEN_WITHIN_MS = 8000;

/** Close codes after which reconnecting cannot help. */
const FINAL = {
  4010: 'ended', 4001: 'unauthorized', 4004: 'missing', 4003: 'refused', 4011: 'removed', 4012: 'banned',
};

export class Connection {
  /**
   * @param {object} o
   * @param {string} o.sessionId
   * @param {() => string} o.token
   * @param {() => (number|null)} o.since the last version applied, or null
   * @param {(frame: object) => void} o.onFrame every frame but `pong`
   * @param {(state: string) => void} o.onState connecting | live | unreachable
   *   | stalled | busy | offline (keys of messages.CONNECTION)
   * @param {(why: string) => void} o.onClosed ended | unauthorized | missing
   *   | refused | removed | banned
   * @param {(offsetMs: number) => void} [o.onClock] the hub's clock minus
   *   ours, from each `pong` (its `at`, against the round trip's midpoint)
   */
  constructor(o) {
    this.o = o;
    this.ws = null;
    this.joined = false;
    this.state = 'connecting';
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.pingId = 0;
    this.pingSent = new Map(); // ping id -> performance.now() when sent
    this.bestRtt = Infinity;
    this.stopped = false;
    this.listeners = [
      ['online', () => this.checkNow()],
      ['offline', () => this.wentOffline()],
      ['visibilitychange', () => { if (document.visibilityState === 'visible') this.checkNow(); }],
    ];
  }

  start() {
    for (const [ev, fn] of this.listeners) (ev === 'visibilitychange' ? document : window).addEventListener(ev, fn);
    this.open();
  }

  finish() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    for (const [ev, fn] of this.listeners) (ev === 'visibilitychange' ? document : window).removeEventListener(ev, fn);
  }

  /** Leave for good: say `leave` when joined, close, stop every timer. */
  stop() {
    if (this.stopped) return;
    this.finish();
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN && this.joined) {
      try { ws.send(JSON.stringify({ type: 'leave' })); } catch { /* closing anyway */ }
    }
    this.drop(1000);
  }

  /** Send a frame if joined; false when it has to wait for the connection. */
  send(frame) {
    if (!this.joined || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Drop the socket and join again now (with `since`): a gap, or "Retry now". */
  reconnectNow() {
    if (this.stopped) return;
    this.drop(1000);
    this.attempt = 0;
    clearTimeout(this.retryTimer);
    this.open();
  }

  /** Back online or visible again: an open socket must prove itself, a closed one is retried now. */
  checkNow() {
    if (this.stopped) return;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ping();
      return;
    }
    // A socket still opening settles by itself (and retries quickly after
    // this reset); with none, open one now.
    this.attempt = 0;
    if (!this.ws) {
      clearTimeout(this.retryTimer);
      this.open();
    }
  }

  wentOffline() {
    // The socket may well survive a short blip; the heartbeat decides. Say
    // what the browser knows meanwhile.
    if (!this.stopped) this.setState('offline');
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.o.onState(state);
  }

  open() {
    if (this.stopped) return;
    let ws;
    try {
      const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
      ws = new WebSocket(`${proto}//${location.host}/v1/ws`);
    } catch (e) {
      console.info('audotics: cannot open a WebSocket', e);
      this.retryLater('unreachable');
      return;
    }
    this.ws = ws;
    this.joined = false;
    const openTimer = setTimeout(() => {
      if (this.ws === ws && ws.readyState === WebSocket.CONNECTING) this.lost('unreachable');
    }, OPEN_WITHIN_MS);
    ws.onopen = () => {
      clearTimeout(openTimer);
      const join = { type: 'join', sessionId: this.o.sessionId, token: this.o.token() };
      // "Up next for this room" comes only to connections that ask for it.
      if (this.o.suggestions) join.suggestions = true;
      // A screen (the TV view) watches: not a member, not in presence.
      if (this.o.watch) join.watch = true;
      const since = this.o.since();
      if (since !== null) join.since = since;
      ws.send(JSON.stringify(join));
      this.startHeartbeat();
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        console.warn('audotics: a frame that is not JSON', ev.data);
        return;
      }
      this.received(msg);
    };
    ws.onclose = (ev) => {
      clearTimeout(openTimer);
      if (this.ws !== ws) return;
      this.closed(ev.code);
    };
  }

  received(msg) {
    if (msg.type === 'pong') {
      // Any pong on this socket proves both directions work.
      clearTimeout(this.pongTimer);
      this.pongTimer = null;
      if (this.joined) this.setState('live');
      this.clock(msg);
      return;
    }
    if (msg.type === 'snapshot' || msg.type === 'resumed') {
      this.joined = true;
      this.attempt = 0;
      this.setState('live');
      // A first ping at once: it gives the hub's clock for progress bars.
      setTimeout(() => this.ping(), 0);
    } else if (msg.type === 'error' && !this.joined) {
      // A refused join. `unauthorized` and `not_found` are followed by their
      // close; `unavailable` (the database) and the rest leave the socket
      // open: try the join again after a while.
      console.info('audotics: join refused', msg.code, msg.message);
      if (msg.code !== 'unauthorized' && msg.code !== 'not_found') this.lost('busy');
      return;
    }
    this.o.onFrame(msg);
  }

  /** The hub's clock from a pong: the offset seen over the quickest round trip wins. */
  clock(msg) {
    const sent = this.pingSent.get(msg.id);
    this.pingSent.delete(msg.id);
    const at = Date.parse(msg.at);
    if (sent === undefined || !Number.isFinite(at) || !this.o.onClock) return;
    const rtt = performance.now() - sent;
    // A quicker round trip bounds the error better; a slower one still
    // counts after a while (clocks drift, a laptop sleeps).
    if (rtt > this.bestRtt * 1.5 + 50) return;
    this.bestRtt = Math.min(this.bestRtt, rtt);
    this.o.onClock(at - (Date.now() - rtt / 2));
  }

  closed(code) {
    this.ws = null;
    this.joined = false;
    this.stopHeartbeat();
    if (this.stopped) return;
    if (FINAL[code]) {
      this.finish();
      this.o.onClosed(FINAL[code]);
      return;
    }
    // 4029: the hub asked us to slow down; start the backoff further along.
    if (code === 4029) this.attempt = Math.max(this.attempt, 4);
    // 1001 (hub going away, or silent for 30 s), 1006 (lost), 4008 (too
    // slow), 4009, 1013, …: join again with `since`.
    this.retryLater('unreachable');
  }

  /** This socket is no good (stalled, never opened, join refused): replace it. */
  lost(why) {
    this.drop(1000);
    this.retryLater(why);
  }

  /** Forget the current socket: no more of its events reach us. */
  drop(code) {
    const ws = this.ws;
    this.ws = null;
    this.joined = false;
    this.stopHeartbeat();
    if (!ws) return;
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    try { ws.close(code); } catch { /* already closed */ }
  }

  retryLater(why) {
    if (this.stopped) return;
    this.setState(navigator.onLine === false ? 'offline' : why);
    this.attempt += 1;
    // 0.15–0.3 s, then doubling to at most 4–8 s; the first retry is quick
    // because most losses are one dropped connection, not a dead hub.
    const base = Math.min(8000, 300 * 2 ** Math.min(this.attempt - 1, 5));
    const delay = Math.round(base / 2 + (Math.random() * base) / 2);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.pingTimer = setInterval(() => this.ping(), PING_EVERY_MS);
  }

  stopHeartbeat() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.pingTimer = null;
    this.pongTimer = null;
  }

  ping() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    this.pingId += 1;
    if (this.pingSent.size > 20) this.pingSent.clear();
    this.pingSent.set(this.pingId, performance.now());
    try {
      ws.send(JSON.stringify({ type: 'ping', id: this.pingId }));
    } catch {
      return;
    }
    // An earlier deadline still running covers this ping too.
    if (!this.pongTimer) {
      this.pongTimer = setTimeout(() => {
        this.pongTimer = null;
        if (this.ws === ws) {
          console.info('audotics: no pong within 5 s; reconnecting');
          this.lost('stalled');
        }
      }, PONG_WITHIN_MS);
    }
  }
}
