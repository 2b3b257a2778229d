// A real hub process on a given database, its REST API, and WebSocket
// listeners that record every frame they receive.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { HERE, ROOT } from './db.js';

const HUB_BIN = process.env.HUB_BIN || path.join(ROOT, 'target', 'debug', 'audotics-hub');
const ARTIFACTS = process.env.COMPAT_ARTIFACTS || path.join(HERE, 'artifacts');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * One HTTP request on a connection of its own (`Connection: close`): a
 * keep-alive connection left idle would hold up the hub's graceful shutdown.
 */
function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false, timeout: 15_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** A unique, readable id for emails, Spotify ids and names. */
export function uid(prefix) {
  return `${prefix}${crypto.randomBytes(6).toString('hex')}`;
}

export class Hub {
  /** Start `audotics-hub serve` on `databaseUrl`; resolves when /readyz answers. */
  static async start(label, databaseUrl) {
    const hub = new Hub(label, databaseUrl, await freePort());
    await hub.start();
    return hub;
  }

  constructor(label, databaseUrl, port) {
    this.label = label;
    this.databaseUrl = databaseUrl;
    this.port = port;
    this.base = `http://127.0.0.1:${port}`;
    this.sockets = new Set();
  }

  async start() {
    if (!fs.existsSync(HUB_BIN)) {
      throw new Error(`hub binary not found at ${HUB_BIN}: build it (cargo build --bin audotics-hub) or set HUB_BIN`);
    }
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    this.logPath = path.join(ARTIFACTS, `hub-${this.label}.log`);
    const log = fs.openSync(this.logPath, 'a');
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'audotics-compat-hub-'));
    const proc = spawn(HUB_BIN, [
      'serve', '--bind', `127.0.0.1:${this.port}`, '--data-dir', this.dataDir,
      // The suite signs up and signs in many accounts from one address.
      '--signups-per-minute', '100000', '--signins-per-minute', '100000',
      '--sessions-per-hour', '100000', '--account-ops-per-sec', '10000',
      '--ops-per-sec', '1000', '--ops-burst', '1000',
    ], {
      stdio: ['ignore', log, log],
      env: { ...process.env, DATABASE_URL: this.databaseUrl, RUST_LOG: process.env.RUST_LOG || 'info' },
    });
    fs.closeSync(log);
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`hub exited early (${proc.exitCode ?? proc.signalCode}); see ${this.logPath}`);
      }
      try {
        const r = await request(`${this.base}/readyz`);
        if (r.status === 200) return;
      } catch { /* not yet */ }
      await sleep(100);
    }
    throw new Error(`hub did not become ready within 60 s; see ${this.logPath}`);
  }

  /** SIGTERM, then SIGKILL after 15 s. */
  async stop() {
    for (const ws of this.sockets) ws.terminate();
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      let timer;
      const late = new Promise((resolve) => { timer = setTimeout(resolve, 15_000, null); });
      const done = await Promise.race([this.exited, late]);
      clearTimeout(timer);
      if (!done) {
        this.proc.kill('SIGKILL');
        await this.exited;
      }
    }
    if (this.dataDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** One REST call → {status, data}. */
  async api(method, p, token, body) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await request(`${this.base}/v1${p}`, {
      method, headers, body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    let data = null;
    try { data = r.text ? JSON.parse(r.text) : null; } catch { data = r.text; }
    return { status: r.status, data };
  }

  /** A call that must succeed with `expect` (a status or list of them). */
  async ok(method, p, token, body, expect = [200, 201]) {
    const res = await this.api(method, p, token, body);
    const want = Array.isArray(expect) ? expect : [expect];
    if (!want.includes(res.status)) {
      throw new Error(`${method} /v1${p} answered ${res.status} ${JSON.stringify(res.data)} (expected ${want.join(' or ')})`);
    }
    return res.data;
  }

  /** A new account made through the hub: {id, email, password, token, user}. */
  async register(name = 'Hub user') {
    const email = `${uid('hub-')}@example.com`;
    const password = `pw-${uid('')}`;
    const data = await this.ok('POST', '/users', undefined, { email, name, password }, 201);
    return { id: data.user.id, email, password, name, token: data.token, user: data.user };
  }

  /** A session made through the hub (caller is host): {session, playlist}. */
  async createSession(token, name = uid('Party ')) {
    return this.ok('POST', '/sessions', token, { name }, 201);
  }

  /** The hub's snapshot of a session over REST (to members). */
  async snapshot(sessionId, token) {
    return this.ok('GET', `/sessions/${sessionId}`, token, undefined, 200);
  }

  /** A WebSocket to /v1/ws, open. */
  async socket(label) {
    const ws = new Listener(this, label);
    await ws.opened;
    return ws;
  }
}

/** One WebSocket connection; keeps every frame it received, in order. */
export class Listener {
  constructor(hub, label = 'ws') {
    this.label = label;
    this.frames = [];
    this.waiters = [];
    this.closeInfo = null;
    this.ws = new WebSocket(`ws://127.0.0.1:${hub.port}/v1/ws`);
    hub.sockets.add(this.ws);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        hub.sockets.delete(this.ws);
        resolve(this.closeInfo);
        this.#wake();
      });
    });
    this.ws.on('error', () => { /* surfaced through `closed` */ });
    this.ws.on('message', (data, isBinary) => {
      const frame = isBinary ? { type: '<binary>' } : JSON.parse(data.toString());
      this.frames.push(frame);
      this.#wake();
    });
  }

  #wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  send(frame) {
    this.ws.send(JSON.stringify(frame));
  }

  /**
   * The first frame at or after index `from` matching `pred`; rejects after
   * `timeout` ms with `what` (and the frames seen) in the message.
   */
  async waitFor(pred, { from = 0, timeout = 5000, what = 'a matching frame' } = {}) {
    const deadline = Date.now() + timeout;
    for (;;) {
      for (let i = from; i < this.frames.length; i++) {
        if (pred(this.frames[i])) return this.frames[i];
      }
      const left = deadline - Date.now();
      if (left <= 0 || (this.closeInfo && !this.frames.slice(from).some(pred))) {
        const seen = this.frames.slice(from).map((f) => JSON.stringify(f).slice(0, 300));
        const closed = this.closeInfo ? `; the connection closed with ${this.closeInfo.code} "${this.closeInfo.reason}"` : '';
        throw new Error(`${this.label}: expected ${what} within ${timeout} ms${closed}; frames seen: ${seen.length ? `\n  ${seen.join('\n  ')}` : '(none)'}`);
      }
      await new Promise((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, Math.min(left, 200));
      });
    }
  }

  /** `join` → the opening frame (`snapshot`); throws on anything else. */
  async join(sessionId, token, since) {
    const from = this.frames.length;
    const frame = { type: 'join', sessionId, token };
    if (since !== undefined) frame.since = since;
    this.send(frame);
    const first = await this.waitFor((f) => ['snapshot', 'resumed', 'error'].includes(f.type), {
      from, timeout: 10_000, what: `a snapshot answering the join of session ${sessionId}`,
    });
    if (first.type === 'error') {
      throw new Error(`${this.label}: join of session ${sessionId} was refused: ${first.code} "${first.message}"`);
    }
    return first;
  }

  /** Send an op with a fresh `req`; resolves with its `ack` or `error`. */
  async op(frame, timeout = 10_000) {
    const req = frame.req || uid('r-');
    const from = this.frames.length;
    this.send({ ...frame, req });
    return this.waitFor((f) => (f.type === 'ack' || f.type === 'error') && f.req === req, {
      from, timeout, what: `the ack or error of ${frame.type} ${req}`,
    });
  }

  /** Like `op`, but the answer must be an ack. */
  async acked(frame, timeout) {
    const answer = await this.op(frame, timeout);
    if (answer.type !== 'ack') {
      throw new Error(`${this.label}: ${frame.type} was refused: ${answer.code} "${answer.message}" (frame ${JSON.stringify(frame)})`);
    }
    return answer;
  }

  updates(from = 0) {
    return this.frames.slice(from).filter((f) => f.type === 'update');
  }

  close() {
    this.ws.terminate();
  }
}

/** The track ids of a snapshot's queue, in order. */
export function queueTrackIds(snapshot) {
  return snapshot.queue.map((e) => e.track.id);
}

/** Apply `update` frames to a queue of {entryId, trackId} (the protocol's rules). */
export function applyUpdates(queue, updates) {
  const q = queue.map((e) => ({ ...e }));
  for (const u of updates) {
    const c = u.change;
    const at = q.findIndex((e) => e.entryId === c.entryId);
    if (c.op === 'add') q.splice(c.index, 0, { entryId: c.entryId, trackId: c.track.id });
    else if (c.op === 'remove' && at >= 0) q.splice(at, 1);
    else if (c.op === 'reorder' && at >= 0) q.splice(c.toIndex, 0, ...q.splice(at, 1));
  }
  return q;
}

/** Sorted copy, for comparing sets given as arrays. */
export const sorted = (xs) => [...xs].sort();
