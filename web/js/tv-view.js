// The big screen (`/tv/CODE`): read-only and readable across a room — what
// plays, large, with its progress; the next tracks; the QR code and the
// code to join; how many are listening. It opens the session with the
// signed-in account when this browser has one (the host's laptop on the
// TV), else as a guest named "TV" made once from the code and kept in this
// browser (not signed in as it: the rest of the page stays signed out).

import { api } from './api.js';
import { auth } from './auth.js';
import { coverArt } from './cover.js';
import { $, el } from './dom.js';
import { spacedCode, drawQr } from './invite.js';
import { plural, problem } from './messages.js';
import { clock } from './now-playing-view.js';
import { Session } from './session.js';

const TV_KEY = 'audotics.tv';
const UP_NEXT = 7;

let session = null;
let timer = null;
let tvGuest = null; // {token, userId} when the TV is its own guest
let coverFor = null;

function readTv() {
  try {
    return JSON.parse(localStorage.getItem(TV_KEY) || 'null');
  } catch {
    return null;
  }
}

function status(text) {
  $('#tv-status').textContent = text || '';
  $('#tv-status').hidden = !text;
}

/** Open the TV view for `code`. */
export async function showTv(code) {
  if (session) return;
  document.body.classList.add('tv-mode');
  status('Opening the party…');
  let target;
  try {
    target = await api('GET', `/join/${encodeURIComponent(code)}`);
  } catch (err) {
    status(err.status === 404 ? 'No party with this code is on now.' : `Couldn't open the party. ${problem(err)}`);
    return;
  }
  let who = null;
  if (!auth.signedIn) {
    tvGuest = readTv();
    if (!tvGuest) {
      try {
        const r = await api('POST', '/auth/guest', { name: 'TV' });
        tvGuest = { token: r.token, userId: r.user.id };
        localStorage.setItem(TV_KEY, JSON.stringify(tvGuest));
      } catch (err) {
        status(`Couldn't open the party. ${problem(err)}`);
        return;
      }
    }
    who = {
      token: () => tvGuest.token,
      me: tvGuest.userId,
      onUnauthorized: () => {
        localStorage.removeItem(TV_KEY);
        location.reload();
      },
    };
  }
  const link = `${location.origin}/j/${target.code}`;
  drawQr($('#tv-qr'), link);
  $('#tv-code').textContent = spacedCode(target.code);
  $('#tv-where').textContent = `${location.host}/j`;
  $('#tv-title').textContent = target.name;
  document.title = `${target.name} · Audotics TV`;
  session = new Session(target.sessionId, { onChange: () => render(), onReaction: () => {}, suggestions: false, watch: true }, who);
  session.start();
  status('');
}

function render() {
  const s = session.state;
  if (s.ended || session.removed) {
    clearInterval(timer);
    status(session.removed ? 'This screen was removed from the party.' : 'The party has ended. Thanks for listening!');
  }
  const online = s.onlineCount() - (tvGuest && s.members.get(tvGuest.userId)?.online ? 1 : 0);
  $('#tv-online').textContent = s.loaded ? `${plural(Math.max(0, online), 'person', 'people')} listening` : '';
  const np = s.party.nowPlaying;
  const view = $('#view-tv');
  view.dataset.state = np ? np.state : 'idle';
  if (np) {
    if (coverFor !== np.entryId) {
      coverFor = np.entryId;
      $('#tv-cover').replaceChildren(coverArt(np.track, 'tv'));
    }
    $('#tv-label').textContent = np.state === 'playing' ? 'Now playing' : 'Paused';
    $('#tv-track').textContent = np.track.name;
    $('#tv-artists').textContent = `${(np.track.artists || []).join(', ')} · added by ${s.nameOf(np.addedBy)}`;
  } else {
    coverFor = null;
    $('#tv-cover').replaceChildren(coverArt({ album: s.info ? s.info.name : '♪' }, 'tv'));
    $('#tv-label').textContent = 'Nothing playing yet';
    $('#tv-track').textContent = s.info ? s.info.name : '';
    $('#tv-artists').textContent = 'Scan the code to add the first track.';
  }
  const next = s.queue.slice(0, UP_NEXT);
  $('#tv-queue').replaceChildren(...next.map((e) => el('li', { class: 'tv-entry' },
    coverArt(e.track, 'md'),
    el('span', { class: 'info' },
      el('span', { class: 'title' }, e.track.name),
      el('span', { class: 'sub' }, `${(e.track.artists || []).join(', ')} · ${s.nameOf(e.addedBy)}`)),
    (e.votes || []).length ? el('span', { class: 'tv-votes' }, `▲ ${e.votes.length}`) : '')));
  $('#tv-queue-empty').hidden = next.length > 0;
  tick();
  clearInterval(timer);
  timer = np && np.state === 'playing' ? setInterval(tick, 500) : null;
}

function tick() {
  const s = session.state;
  const np = s.party.nowPlaying;
  $('#tv-bar').hidden = !np;
  if (!np) {
    $('#tv-elapsed').textContent = '';
    $('#tv-total').textContent = '';
    return;
  }
  const pos = s.positionAt(session.hubNow());
  const d = np.track.durationMs || 0;
  $('#tv-bar').dataset.positionMs = String(Math.round(pos));
  $('#tv-bar').setAttribute('aria-valuenow', String(Math.floor(pos / 1000)));
  $('#tv-fill').style.width = d ? `${Math.min(100, (pos / d) * 100).toFixed(2)}%` : '0%';
  $('#tv-elapsed').textContent = clock(pos);
  $('#tv-total').textContent = d ? clock(d) : '';
}
