// Audotics Hub web client: plain ES module, no build step, no framework.
// Talks to the hub's REST API (/v1) and the session protocol v1 over
// WebSocket (/v1/ws). Routes: #/ (home), #/s/<sessionId> (a session).

import qrcode from './vendor/qrcode.mjs';

const $ = (sel) => document.querySelector(sel);
const TOKEN_KEY = 'audotics.token';
const USER_KEY = 'audotics.user';

// ---------------------------------------------------------------- auth state

const auth = {
  token: localStorage.getItem(TOKEN_KEY),
  user: readJson(localStorage.getItem(USER_KEY)),
};

function readJson(s) {
  try { return s ? JSON.parse(s) : null; } catch { return null; }
}

function setAuth(token, user) {
  auth.token = token;
  auth.user = user;
  if (token) {
    localStorage.setItem(TOKEN_KEY, token);
    localStorage.setItem(USER_KEY, JSON.stringify(user));
  } else {
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(USER_KEY);
  }
  renderAccount();
}

// ---------------------------------------------------------------- messages

const errorsEl = $('#errors');

/** Show an error in words (aria-live assertive); stays until dismissed. */
function showError(text) {
  const item = document.createElement('div');
  item.className = 'error';
  const msg = document.createElement('span');
  msg.textContent = text;
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'btn btn-quiet btn-small';
  close.textContent = 'Dismiss';
  close.setAttribute('aria-label', `Dismiss: ${text}`);
  close.addEventListener('click', () => item.remove());
  item.append(msg, close);
  errorsEl.append(item);
  setTimeout(() => item.remove(), 20000);
  while (errorsEl.children.length > 4) errorsEl.firstElementChild.remove();
  console.warn('audotics:', text);
}

function clearErrors() {
  errorsEl.replaceChildren();
}

const statusEl = $('#status');
function setStatus(text) {
  statusEl.textContent = text || '';
  statusEl.hidden = !text;
}

function toast(text) {
  const t = document.createElement('div');
  t.className = 'toast';
  t.textContent = text;
  $('#toasts').append(t);
  setTimeout(() => t.remove(), 4000);
}

/** Words for the protocol's error codes, plus the hub's own message. */
const CODE_WORDS = {
  unauthorized: 'You are not signed in (or your sign-in expired).',
  forbidden: 'You are not allowed to do that.',
  not_found: 'That no longer exists.',
  invalid: 'That was not accepted.',
  conflict: 'The queue changed in the meantime; please try again.',
  rate_limited: 'Slow down: too many changes at once.',
  too_large: 'The queue is full.',
  unavailable: 'The hub is temporarily unavailable; please retry.',
};

function describeError(code, message) {
  const words = CODE_WORDS[code] || 'Something went wrong.';
  return message ? `${words} (${message})` : words;
}

// ---------------------------------------------------------------- REST

class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth.token) headers.Authorization = `Bearer ${auth.token}`;
  let res;
  try {
    res = await fetch(`/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15000),
    });
  } catch (e) {
    throw new ApiError(0, 'network', 'Cannot reach the hub. Check your connection and try again.');
  }
  const text = await res.text();
  const data = readJson(text);
  if (!res.ok) {
    const code = data && data.code;
    const detail = (data && (data.detail || data.title)) || `HTTP ${res.status}`;
    if (res.status === 401 && path !== '/auth/token') {
      setAuth(null, null);
      route();
    }
    throw new ApiError(res.status, code, detail);
  }
  return data;
}

function apiErrorText(e) {
  if (e instanceof ApiError) {
    if (e.code === 'network') return e.message;
    return describeError(e.code, e.message);
  }
  return `Unexpected problem: ${e && e.message ? e.message : e}`;
}

// ---------------------------------------------------------------- views

const views = ['auth', 'home', 'session'];
function showView(name) {
  for (const v of views) $(`#view-${v}`).hidden = v !== name;
}

function renderAccount() {
  const signedIn = Boolean(auth.token && auth.user);
  $('#account').hidden = !signedIn;
  $('#account-name').textContent = signedIn ? `Signed in as ${auth.user.name}` : '';
}

function parseRoute() {
  const m = location.hash.match(/^#\/s\/([0-9a-fA-F-]{1,64})\/?$/);
  return m ? { name: 'session', id: m[1] } : { name: 'home' };
}

function route() {
  const r = parseRoute();
  if (!auth.token) {
    if (session) leaveSession();
    $('#auth-lead').textContent = r.name === 'session'
      ? 'Sign in or create an account to join this session.'
      : "Sign in to start a session or join your friends' queue.";
    showView('auth');
    return;
  }
  if (r.name === 'session') {
    if (!session || session.id !== r.id) {
      if (session) leaveSession();
      openSession(r.id);
    }
    showView('session');
  } else {
    if (session) leaveSession();
    showView('home');
  }
}

// ---------------------------------------------------------------- auth forms

function selectTab(which) {
  const signin = which === 'signin';
  $('#tab-signin').setAttribute('aria-selected', String(signin));
  $('#tab-signup').setAttribute('aria-selected', String(!signin));
  $('#tab-signin').tabIndex = signin ? 0 : -1;
  $('#tab-signup').tabIndex = signin ? -1 : 0;
  $('#form-signin').hidden = !signin;
  $('#form-signup').hidden = signin;
}

$('#tab-signin').addEventListener('click', () => selectTab('signin'));
$('#tab-signup').addEventListener('click', () => selectTab('signup'));
for (const tab of [$('#tab-signin'), $('#tab-signup')]) {
  tab.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
      const next = tab.id === 'tab-signin' ? 'signup' : 'signin';
      selectTab(next);
      $(`#tab-${next}`).focus();
      e.preventDefault();
    }
  });
}

async function withBusy(form, fn) {
  const button = form.querySelector('button[type=submit]');
  if (button) button.disabled = true;
  try { await fn(); } finally { if (button) button.disabled = false; }
}

$('#form-signin').addEventListener('submit', (e) => {
  e.preventDefault();
  const f = e.currentTarget;
  withBusy(f, async () => {
    try {
      const r = await api('POST', '/auth/token', {
        email: f.email.value.trim(),
        password: f.password.value,
      });
      clearErrors();
      setAuth(r.token, r.user);
      f.reset();
      route();
    } catch (err) {
      showError(err.status === 401 ? 'Sign-in failed: wrong email or password.' : `Sign-in failed. ${apiErrorText(err)}`);
    }
  });
});

$('#form-signup').addEventListener('submit', (e) => {
  e.preventDefault();
  const f = e.currentTarget;
  withBusy(f, async () => {
    try {
      const r = await api('POST', '/users', {
        email: f.email.value.trim(),
        name: f.name.value.trim(),
        password: f.password.value,
      });
      clearErrors();
      setAuth(r.token, r.user);
      f.reset();
      route();
    } catch (err) {
      showError(`Could not create the account. ${apiErrorText(err)}`);
    }
  });
});

$('#sign-out').addEventListener('click', () => {
  if (session) leaveSession();
  setAuth(null, null);
  location.hash = '#/';
  route();
});

// ---------------------------------------------------------------- home forms

$('#form-create').addEventListener('submit', (e) => {
  e.preventDefault();
  const f = e.currentTarget;
  withBusy(f, async () => {
    try {
      const r = await api('POST', '/sessions', { name: f.name.value.trim() });
      clearErrors();
      f.reset();
      location.hash = `#/s/${r.session.id}`;
    } catch (err) {
      showError(`Could not create the session. ${apiErrorText(err)}`);
    }
  });
});

const UUID_RE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

$('#form-join').addEventListener('submit', (e) => {
  e.preventDefault();
  const f = e.currentTarget;
  const m = f.link.value.match(UUID_RE);
  if (!m) {
    showError('That is not a session link or ID. Paste the link your host shared.');
    return;
  }
  clearErrors();
  f.reset();
  location.hash = `#/s/${m[0].toLowerCase()}`;
});

// ---------------------------------------------------------------- session state

/** The open session, or null. */
let session = null;

function newSession(id) {
  return {
    id,
    ws: null,
    version: null, // last version applied; null before the first snapshot
    info: null, // {id, name, active, hostId}
    you: null, // {userId, role}
    queue: [], // [{entryId, track, addedBy, addedAt}]
    members: new Map(), // userId -> {name, online}
    trackNames: new Map(), // trackId -> name
    pending: new Map(), // req -> {frame, what, tries}
    state: 'connecting', // connecting | live | reconnecting | ended | closed
    attempt: 0,
    timer: null,
    joined: false,
    closing: false,
  };
}

let reqCounter = 0;
function newReq() {
  reqCounter += 1;
  const rand = crypto.getRandomValues(new Uint32Array(2));
  return `w${Date.now().toString(36)}-${rand[0].toString(36)}${rand[1].toString(36)}-${reqCounter}`;
}

function isHost() {
  return Boolean(session && session.you && session.you.role === 'host');
}

function memberName(userId) {
  if (auth.user && userId === auth.user.id) return 'you';
  const m = session && session.members.get(userId);
  return m ? m.name : 'someone';
}

function openSession(id) {
  session = newSession(id);
  $('#session-title').textContent = 'Session';
  $('#ended-banner').hidden = true;
  $('#feed').replaceChildren();
  $('#feed-empty').hidden = false;
  $('#results').replaceChildren();
  $('#search-status').textContent = '';
  const link = `${location.origin}/#/s/${id}`;
  $('#share-link').value = link;
  renderQr(link);
  renderSession();
  connect();
}

function leaveSession() {
  const s = session;
  session = null;
  if (!s) return;
  s.closing = true;
  clearTimeout(s.timer);
  if (s.ws) {
    try {
      if (s.ws.readyState === WebSocket.OPEN && s.joined) s.ws.send(JSON.stringify({ type: 'leave' }));
      s.ws.close(1000);
    } catch { /* already closed */ }
  }
  setStatus('');
}

// ---------------------------------------------------------------- WebSocket

function setConn(state, text) {
  if (!session) return;
  session.state = state;
  const badge = $('#conn-badge');
  badge.dataset.state = state;
  badge.textContent = text;
  if (state === 'reconnecting') setStatus(text);
  else if (state === 'live') setStatus('');
  renderControls();
}

function connect() {
  const s = session;
  if (!s || s.closing) return;
  clearTimeout(s.timer);
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  let ws;
  try {
    ws = new WebSocket(`${proto}//${location.host}/v1/ws`);
  } catch (e) {
    scheduleReconnect(s, `could not open a connection (${e.message})`);
    return;
  }
  s.ws = ws;
  s.joined = false;
  // A connection that never opens (hub down, SYN lost) is given up on.
  const openTimer = setTimeout(() => {
    if (ws.readyState === WebSocket.CONNECTING) ws.close();
  }, 8000);
  ws.addEventListener('open', () => {
    clearTimeout(openTimer);
    const join = { type: 'join', sessionId: s.id, token: auth.token };
    if (s.version !== null) join.since = s.version;
    ws.send(JSON.stringify(join));
  });
  ws.addEventListener('message', (ev) => {
    if (session !== s || s.ws !== ws) return;
    let msg;
    try { msg = JSON.parse(ev.data); } catch {
      showError('The hub sent a message this page cannot read.');
      return;
    }
    onMessage(s, ws, msg);
  });
  ws.addEventListener('close', (ev) => {
    clearTimeout(openTimer);
    if (session !== s || s.ws !== ws) return;
    s.ws = null;
    s.joined = false;
    onClose(s, ev);
  });
}

function scheduleReconnect(s, why) {
  if (session !== s || s.closing || s.state === 'ended') return;
  s.attempt += 1;
  const base = Math.min(8000, 300 * 2 ** Math.min(s.attempt - 1, 5));
  const delay = Math.round(base / 2 + Math.random() * base / 2);
  setConn('reconnecting', 'Reconnecting…');
  console.info(`audotics: reconnecting in ${delay} ms (${why})`);
  clearTimeout(s.timer);
  s.timer = setTimeout(connect, delay);
}

function onClose(s, ev) {
  switch (ev.code) {
    case 4010:
      markEnded(s);
      return;
    case 4001:
      showError('Your sign-in is no longer valid. Please sign in again.');
      setAuth(null, null);
      route();
      return;
    case 4004:
      setConn('closed', 'Not found');
      showError('This session does not exist. Check the link.');
      return;
    case 4003:
      setConn('closed', 'Refused');
      showError('The hub refused this connection.');
      return;
    case 4029:
      showError('Too many changes too fast: the hub paused this connection. Reconnecting…');
      s.attempt = Math.max(s.attempt, 4);
      scheduleReconnect(s, 'rate limited');
      return;
    default:
      // 1000 (not asked by us), 1001 hub shutting down, 1006 connection lost,
      // 4008 too slow, 4009 join timeout, …: resume with `since`.
      scheduleReconnect(s, `closed with ${ev.code}`);
  }
}

function send(s, frame) {
  if (s.ws && s.ws.readyState === WebSocket.OPEN && s.joined) {
    s.ws.send(JSON.stringify(frame));
    return true;
  }
  return false;
}

/** Send an op with a fresh `req`; kept until acked, re-sent after reconnects. */
function sendOp(frame, what) {
  const s = session;
  if (!s) return;
  if (s.state === 'ended') {
    showError('This session has ended; the queue can no longer change.');
    return;
  }
  const req = newReq();
  const full = { ...frame, req };
  s.pending.set(req, { frame: full, what, tries: 0 });
  if (!send(s, full)) setStatus('Reconnecting… your change will be sent when the connection is back.');
}

function resendPending(s) {
  for (const p of s.pending.values()) send(s, p.frame);
}

function onMessage(s, ws, msg) {
  switch (msg.type) {
    case 'snapshot':
      s.joined = true;
      s.attempt = 0;
      applySnapshot(s, msg);
      setConn('live', 'Live');
      resendPending(s);
      break;
    case 'resumed':
      s.joined = true;
      s.attempt = 0;
      setConn('live', 'Live');
      // The missed updates follow; our version stays until they arrive.
      resendPending(s);
      break;
    case 'update':
      applyUpdate(s, ws, msg);
      break;
    case 'ack':
      s.pending.delete(msg.req);
      if (!s.pending.size && s.state === 'live') setStatus('');
      break;
    case 'error':
      onError(s, ws, msg);
      break;
    case 'presence': {
      const m = s.members.get(msg.userId) || { name: msg.name, online: false };
      m.name = msg.name;
      m.online = msg.online;
      s.members.set(msg.userId, m);
      renderPeople();
      break;
    }
    case 'interaction':
      onInteraction(s, msg);
      break;
    case 'ended':
      markEnded(s);
      break;
    default:
      console.warn('audotics: unknown frame', msg);
  }
}

function onError(s, ws, msg) {
  const p = msg.req ? s.pending.get(msg.req) : null;
  if (p && msg.code === 'unavailable' && p.tries < 3) {
    // Not applied; safe to retry with the same req.
    p.tries += 1;
    showError(`${describeError(msg.code, msg.message)} Retrying ${p.what}…`);
    setTimeout(() => { if (session === s) send(s, p.frame); }, 1500 * p.tries);
    return;
  }
  if (msg.req) s.pending.delete(msg.req);
  if (!s.joined) {
    // A refused join: unauthorized/not_found come with a close; unavailable
    // leaves the connection open, so retry the join later.
    showError(`Could not join the session. ${describeError(msg.code, msg.message)}`);
    if (msg.code === 'unavailable' || msg.code === 'rate_limited') {
      try { ws.close(); } catch { /* ignore */ }
    }
    return;
  }
  const what = p ? `Could not ${p.what}. ` : '';
  showError(`${what}${describeError(msg.code, msg.message)}`);
}

function applySnapshot(s, snap) {
  s.version = snap.version;
  s.info = snap.session;
  s.you = snap.you;
  s.queue = snap.queue.slice();
  s.members = new Map(snap.members.map((m) => [m.userId, { name: m.name, online: m.online }]));
  for (const e of s.queue) s.trackNames.set(e.track.id, e.track.name);
  if (!snap.session.active) markEnded(s);
  renderSession();
}

function applyUpdate(s, ws, u) {
  if (s.version === null) return; // not joined yet; the snapshot will cover it
  if (u.version <= s.version) return; // already applied (replay overlap)
  if (u.version !== s.version + 1) {
    // A gap: rejoin with `since` and get exactly the missed updates.
    console.info(`audotics: version gap ${s.version} → ${u.version}; resuming`);
    s.ws = null;
    s.joined = false;
    try { ws.close(1000); } catch { /* ignore */ }
    connect();
    return;
  }
  const c = u.change;
  const q = s.queue;
  const at = q.findIndex((e) => e.entryId === c.entryId);
  if (c.op === 'add') {
    // A track linked outside the hub (the old app) counts as the host's.
    const entry = { entryId: c.entryId, track: c.track, addedBy: c.by ?? (s.info && s.info.hostId), addedAt: u.at };
    s.trackNames.set(c.track.id, c.track.name);
    if (at === -1) q.splice(Math.min(c.index ?? q.length, q.length), 0, entry);
  } else if (c.op === 'remove') {
    if (at !== -1) q.splice(at, 1);
  } else if (c.op === 'reorder') {
    if (at !== -1) {
      const [entry] = q.splice(at, 1);
      q.splice(Math.min(c.toIndex, q.length), 0, entry);
    }
  } else if (c.op === 'member' && c.detail) {
    // Added or removed outside the hub (the old app).
    const d = c.detail;
    if (d.member) {
      const m = s.members.get(d.userId) || { name: d.name, online: false };
      s.members.set(d.userId, m);
    } else {
      s.members.delete(d.userId);
    }
    renderPeople();
  }
  s.version = u.version;
  renderQueue();
}

function onInteraction(s, msg) {
  const who = memberName(msg.userId);
  const track = s.trackNames.get(msg.trackId) || 'a track';
  const verbs = { like: 'liked', skip: 'wants to skip', dislike: 'disliked', play: 'played', save: 'saved', share: 'shared' };
  const self = who === 'you';
  const verb = self && msg.kind === 'skip' ? 'want to skip' : verbs[msg.kind] || `reacted (${msg.kind}) to`;
  const subject = self ? 'You' : who;
  const text = `${subject} ${verb} “${track}”`;
  const li = document.createElement('li');
  const time = document.createElement('time');
  time.dateTime = msg.at;
  time.textContent = new Date(msg.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const span = document.createElement('span');
  span.textContent = text;
  span.className = `feed-text kind-${msg.kind}`;
  li.append(span, time);
  const feed = $('#feed');
  feed.prepend(li);
  while (feed.children.length > 30) feed.lastElementChild.remove();
  $('#feed-empty').hidden = true;
  toast(text);
}

function markEnded(s) {
  if (s.state === 'ended') return;
  clearTimeout(s.timer);
  s.closing = true;
  if (s.info) s.info.active = false;
  s.pending.clear();
  setConn('ended', 'Ended');
  setStatus('This session has ended.');
  $('#ended-banner').hidden = false;
  renderSession();
}

// ---------------------------------------------------------------- rendering

function renderSession() {
  const s = session;
  if (!s) return;
  $('#session-title').textContent = s.info ? s.info.name : 'Session';
  document.title = s.info ? `${s.info.name} · Audotics Hub` : 'Audotics Hub';
  const badge = $('#role-badge');
  badge.textContent = s.you ? (s.you.role === 'host' ? 'Host' : 'Guest') : '';
  badge.hidden = !s.you;
  renderQueue();
  renderPeople();
  renderControls();
}

function renderControls() {
  const s = session;
  if (!s) return;
  const ended = s.state === 'ended';
  $('#host-card').hidden = !isHost() || ended;
  $('#add-card').hidden = ended;
  $('#share-card').hidden = ended;
  $('#queue-help').textContent = ended
    ? ''
    : isHost()
      ? 'As host you can drag tracks to reorder them, or use the Move up / Move down buttons.'
      : 'Only the host can reorder the queue. You can remove tracks you added.';
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('aria-') || k === 'role' || k === 'draggable') e.setAttribute(k, v);
    else e[k] = v;
  }
  e.append(...children);
  return e;
}

/** Focus to restore after a re-render: {entryId, action}. */
let focusWish = null;

function renderQueue() {
  const s = session;
  if (!s) return;
  const list = $('#queue');
  const active = document.activeElement;
  const keep = focusWish || (active && list.contains(active) && active.dataset.action
    ? { entryId: active.dataset.entry, action: active.dataset.action }
    : null);
  focusWish = null;
  const host = isHost() && s.state !== 'ended';
  const ended = s.state === 'ended';
  const me = auth.user && auth.user.id;
  const n = s.queue.length;
  const items = s.queue.map((e, i) => {
    const t = e.track;
    const artists = (t.artists || []).join(', ');
    const li = el('li', { class: 'entry', dataset: { entry: e.entryId, index: String(i) } });
    if (host) {
      li.setAttribute('draggable', 'true');
      li.classList.add('draggable');
    }
    const pos = el('span', { class: 'pos', 'aria-hidden': 'true' }, String(i + 1));
    const info = el('div', { class: 'info' },
      el('span', { class: 'title' }, t.name),
      el('span', { class: 'artists' }, artists),
      el('span', { class: 'added' }, `Added by ${memberName(e.addedBy)}`));
    const actions = el('div', { class: 'actions' });
    if (!ended) {
      actions.append(
        el('button', {
          type: 'button', class: 'btn btn-small react', textContent: '♥ Like',
          dataset: { action: 'like', entry: e.entryId },
          'aria-label': `Like ${t.name}`,
        }),
        el('button', {
          type: 'button', class: 'btn btn-small react', textContent: 'Skip',
          dataset: { action: 'skip', entry: e.entryId },
          'aria-label': `Vote to skip ${t.name}`,
        }),
      );
      if (host) {
        actions.append(
          el('button', {
            type: 'button', class: 'btn btn-small move', textContent: '↑',
            dataset: { action: 'up', entry: e.entryId },
            'aria-label': `Move ${t.name} up`, disabled: i === 0,
          }),
          el('button', {
            type: 'button', class: 'btn btn-small move', textContent: '↓',
            dataset: { action: 'down', entry: e.entryId },
            'aria-label': `Move ${t.name} down`, disabled: i === n - 1,
          }),
        );
      }
      if (host || e.addedBy === me) {
        actions.append(el('button', {
          type: 'button', class: 'btn btn-small btn-danger-quiet', textContent: 'Remove',
          dataset: { action: 'remove', entry: e.entryId },
          'aria-label': `Remove ${t.name}`,
        }));
      }
    }
    li.append(pos, info, actions);
    return li;
  });
  list.replaceChildren(...items);
  list.setAttribute('aria-label', `Queue, ${n} track${n === 1 ? '' : 's'}`);
  $('#queue-count').textContent = `(${n})`;
  $('#queue-empty').hidden = n > 0;
  if (keep) {
    let target = list.querySelector(`button[data-entry="${keep.entryId}"][data-action="${keep.action}"]`);
    if (target && target.disabled) {
      target = list.querySelector(`button[data-entry="${keep.entryId}"]:not([disabled])[data-action="${keep.action === 'up' ? 'down' : 'up'}"]`);
    }
    if (target) target.focus();
  }
}

function renderPeople() {
  const s = session;
  if (!s) return;
  const people = [...s.members.entries()].sort((a, b) =>
    (b[1].online - a[1].online) || a[1].name.localeCompare(b[1].name));
  const hostId = s.info && s.info.hostId;
  const items = people.map(([id, m]) => {
    const name = auth.user && id === auth.user.id ? `${m.name} (you)` : m.name;
    const li = el('li', { class: m.online ? 'online' : 'offline', dataset: { user: id } },
      el('span', { class: 'dot', 'aria-hidden': 'true' }),
      el('span', { class: 'person' }, name),
      el('span', { class: 'presence' }, `${id === hostId ? 'host · ' : ''}${m.online ? 'listening' : 'away'}`));
    return li;
  });
  $('#people').replaceChildren(...items);
  const online = people.filter(([, m]) => m.online).length;
  $('#people-count').textContent = `(${online} online)`;
}

function renderQr(text) {
  const box = $('#qr');
  try {
    const qr = qrcode(0, 'M');
    qr.addData(text);
    qr.make();
    const n = qr.getModuleCount();
    const quiet = 4;
    const size = n + quiet * 2;
    let d = '';
    for (let r = 0; r < n; r += 1) {
      for (let c = 0; c < n; c += 1) {
        if (qr.isDark(r, c)) d += `M${c + quiet} ${r + quiet}h1v1h-1z`;
      }
    }
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
    svg.setAttribute('shape-rendering', 'crispEdges');
    svg.setAttribute('aria-hidden', 'true');
    const bg = document.createElementNS(ns, 'rect');
    bg.setAttribute('width', String(size));
    bg.setAttribute('height', String(size));
    bg.setAttribute('fill', '#ffffff');
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', d);
    path.setAttribute('fill', '#000000');
    svg.append(bg, path);
    box.replaceChildren(svg);
  } catch (e) {
    box.replaceChildren();
    showError(`Could not draw the QR code (${e.message}); share the link instead.`);
  }
}

// ---------------------------------------------------------------- queue actions

function entryById(id) {
  return session ? session.queue.find((e) => e.entryId === id) : null;
}

function reorder(entryId, toIndex) {
  const s = session;
  if (!s || !isHost()) return;
  const from = s.queue.findIndex((e) => e.entryId === entryId);
  if (from === -1 || toIndex < 0 || toIndex >= s.queue.length || toIndex === from) return;
  sendOp({ type: 'reorder', entryId, toIndex, baseVersion: s.version }, 'move the track');
}

$('#queue').addEventListener('click', (e) => {
  const b = e.target.closest('button[data-action]');
  if (!b || !session) return;
  const entry = entryById(b.dataset.entry);
  if (!entry) return;
  const idx = session.queue.indexOf(entry);
  switch (b.dataset.action) {
    case 'like':
    case 'skip':
      sendOp({ type: 'interaction', trackId: entry.track.id, kind: b.dataset.action },
        b.dataset.action === 'like' ? 'send your like' : 'send your skip vote');
      break;
    case 'up':
      focusWish = { entryId: entry.entryId, action: 'up' };
      reorder(entry.entryId, idx - 1);
      break;
    case 'down':
      focusWish = { entryId: entry.entryId, action: 'down' };
      reorder(entry.entryId, idx + 1);
      break;
    case 'remove':
      sendOp({ type: 'remove', entryId: entry.entryId }, `remove “${entry.track.name}”`);
      break;
    default:
  }
});

// HTML5 drag and drop (host only: only the host's entries are draggable).
let dragging = null;
const queueEl = $('#queue');
queueEl.addEventListener('dragstart', (e) => {
  const li = e.target.closest('li.entry');
  if (!li || !isHost()) { e.preventDefault(); return; }
  dragging = li.dataset.entry;
  e.dataTransfer.effectAllowed = 'move';
  e.dataTransfer.setData('text/plain', dragging);
  li.classList.add('dragging');
});
queueEl.addEventListener('dragover', (e) => {
  if (!dragging) return;
  const li = e.target.closest('li.entry');
  if (!li) return;
  e.preventDefault();
  e.dataTransfer.dropEffect = 'move';
  for (const x of queueEl.querySelectorAll('.drop-target')) x.classList.remove('drop-target');
  li.classList.add('drop-target');
});
queueEl.addEventListener('dragleave', (e) => {
  const li = e.target.closest('li.entry');
  if (li && !li.contains(e.relatedTarget)) li.classList.remove('drop-target');
});
queueEl.addEventListener('drop', (e) => {
  const li = e.target.closest('li.entry');
  const id = dragging || e.dataTransfer.getData('text/plain');
  dragging = null;
  if (!li || !id) return;
  e.preventDefault();
  li.classList.remove('drop-target');
  reorder(id, Number(li.dataset.index));
});
queueEl.addEventListener('dragend', () => {
  dragging = null;
  for (const x of queueEl.querySelectorAll('.dragging, .drop-target')) {
    x.classList.remove('dragging', 'drop-target');
  }
});

// ---------------------------------------------------------------- adding tracks

/** Tracks seen in search results, by Spotify id (so a pasted id of a known
 * track is queued by its catalog id, not with placeholder details). */
const knownBySpotifyId = new Map();

let searchSeq = 0;
async function search(q) {
  const seq = ++searchSeq;
  const statusLine = $('#search-status');
  const results = $('#results');
  if (q.length < 1) {
    results.replaceChildren();
    statusLine.textContent = '';
    return;
  }
  statusLine.textContent = 'Searching…';
  try {
    const r = await api('GET', `/tracks?q=${encodeURIComponent(q)}&limit=20`);
    if (seq !== searchSeq) return;
    const tracks = r.tracks || [];
    statusLine.textContent = tracks.length
      ? `${tracks.length} result${tracks.length === 1 ? '' : 's'} for “${q}”.`
      : `No tracks match “${q}”.`;
    results.replaceChildren(...tracks.map((t) => {
      knownBySpotifyId.set(t.spotifyId, t);
      const artists = t.artists.join(', ');
      return el('li', { class: 'result' },
        el('div', { class: 'info' },
          el('span', { class: 'title' }, t.name),
          el('span', { class: 'artists' }, `${artists} · ${t.album}`)),
        el('button', {
          type: 'button', class: 'btn btn-small btn-primary', textContent: 'Add',
          dataset: { track: t.id, name: t.name },
          'aria-label': `Add ${t.name} by ${artists}`,
        }));
    }));
  } catch (err) {
    if (seq !== searchSeq) return;
    statusLine.textContent = '';
    showError(`Search failed. ${apiErrorText(err)}`);
  }
}

let searchTimer = null;
$('#search-q').addEventListener('input', (e) => {
  clearTimeout(searchTimer);
  const q = e.target.value.trim();
  searchTimer = setTimeout(() => search(q), 300);
});
$('#form-search').addEventListener('submit', (e) => {
  e.preventDefault();
  clearTimeout(searchTimer);
  search($('#search-q').value.trim());
});
$('#results').addEventListener('click', (e) => {
  const b = e.target.closest('button[data-track]');
  if (!b) return;
  session && session.trackNames.set(b.dataset.track, b.dataset.name);
  sendOp({ type: 'add', trackId: b.dataset.track }, `add “${b.dataset.name}”`);
  toast(`Adding “${b.dataset.name}”…`);
});

/** A Spotify track id from a link, a URI or a bare id; null if none. */
export function parseSpotify(input) {
  const s = input.trim();
  let m = s.match(/^https?:\/\/open\.spotify\.com\/(?:intl-[a-z-]+\/)?track\/([A-Za-z0-9]{22})(?:[/?#].*)?$/);
  if (m) return m[1];
  m = s.match(/^spotify:track:([A-Za-z0-9]{22})$/);
  if (m) return m[1];
  m = s.match(/^[A-Za-z0-9]{22}$/);
  return m ? m[0] : null;
}

$('#form-spotify').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('#spotify-input');
  const id = parseSpotify(input.value);
  if (!id) {
    showError('That is not a Spotify track link or ID. Use https://open.spotify.com/track/…, spotify:track:… or the 22-character ID.');
    return;
  }
  let known = knownBySpotifyId.get(id)
    || (session && session.queue.map((q) => q.track).find((t) => t.spotifyId === id));
  if (!known) {
    // A track the catalog already has keeps its real details.
    try {
      const found = await api('GET', `/tracks?spotifyId=${encodeURIComponent(id)}`);
      known = found && found.tracks && found.tracks[0];
    } catch (err) {
      showError(apiErrorText(err));
      return;
    }
  }
  if (known) {
    sendOp({ type: 'add', trackId: known.id }, `add “${known.name}”`);
  } else {
    sendOp({
      type: 'add',
      track: { spotifyId: id, name: `Spotify track ${id}`, artists: ['Unknown artist'], album: 'Unknown album' },
    }, `add Spotify track ${id}`);
  }
  input.value = '';
});

// ---------------------------------------------------------------- share & host

$('#copy-link').addEventListener('click', async () => {
  const input = $('#share-link');
  try {
    await navigator.clipboard.writeText(input.value);
    toast('Link copied');
    setStatus('Link copied to the clipboard.');
    setTimeout(() => { if (session && session.state === 'live') setStatus(''); }, 2500);
  } catch {
    input.focus();
    input.select();
    setStatus('Press Ctrl+C (or long-press and Copy) to copy the selected link.');
  }
});

$('#end-session').addEventListener('click', () => {
  $('#end-confirm').hidden = false;
  $('#end-session').hidden = true;
  $('#end-no').focus();
});
$('#end-no').addEventListener('click', () => {
  $('#end-confirm').hidden = true;
  $('#end-session').hidden = false;
  $('#end-session').focus();
});
$('#end-yes').addEventListener('click', async () => {
  const s = session;
  if (!s) return;
  $('#end-yes').disabled = true;
  try {
    await api('POST', `/sessions/${s.id}/end`);
    markEnded(s);
  } catch (err) {
    showError(`Could not end the session. ${apiErrorText(err)}`);
  } finally {
    $('#end-yes').disabled = false;
    $('#end-confirm').hidden = true;
    $('#end-session').hidden = false;
  }
});

// ---------------------------------------------------------------- network events

window.addEventListener('offline', () => {
  if (session && session.state !== 'ended') setConn('reconnecting', 'Reconnecting… (offline)');
});
window.addEventListener('online', () => {
  const s = session;
  if (s && !s.closing && (!s.ws || s.ws.readyState !== WebSocket.OPEN)) {
    s.attempt = 0;
    connect();
  }
});
window.addEventListener('hashchange', route);
window.addEventListener('pagehide', () => { if (session) leaveSession(); });

// ---------------------------------------------------------------- start

renderAccount();
route();
// For tests and debugging: a read-only look at the client state.
window.audotics = {
  get version() { return session ? session.version : null; },
  get state() { return session ? session.state : null; },
  get queue() { return session ? session.queue.map((e) => e.entryId) : []; },
  get pending() { return session ? session.pending.size : 0; },
  parseSpotify,
};
